;; A component that exports init but not handle: refused at upload.
(component
  (core module $M
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32)))
  (core instance $m (instantiate $M))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $m "init") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
)
