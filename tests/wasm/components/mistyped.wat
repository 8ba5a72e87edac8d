;; An agent that imports host.send with the wrong signature (u32 -> u64) and calls it:
;; the host must trap the guest, not misread the value.
(component
  (import "caxton:agent/host@0.1.0" (instance $host
    (export "send" (func (param "message" u32) (result u64)))
  ))
  (core func $send (canon lower (func $host "send")))
  (core module $M
    (import "host" "send" (func $send (param i32) (result i64)))
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (i32.const 1024))
    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))
    (func (export "handle") (param i32 i32) (result i32)
      (drop (call $send (i32.const 7)))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32)))
  (core instance $m (instantiate $M (with "host" (instance (export "send" (func $send))))))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $m "init") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $m "handle") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
)
