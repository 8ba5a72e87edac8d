;; A component that imports an interface outside the caxton:agent world: refused at upload.
(component
  (import "acme:bank/vault@1.0.0" (instance $vault
    (export "open" (func))
  ))
  (core module $M
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "ok") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32)))
  (core instance $m (instantiate $M))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $m "ok") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $m "ok") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
)
