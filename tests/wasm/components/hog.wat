;; An agent whose handle grows its memory until refused, then writes past the end.
(component
  (core module $M
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (block $fits
        (br_if $fits (i32.le_u (global.get $bump) (i32.shl (memory.size) (i32.const 16))))
        (br_if $fits (i32.ne (i32.const -1)
          (memory.grow (i32.add (i32.const 1) (i32.shr_u
            (i32.sub (global.get $bump) (i32.shl (memory.size) (i32.const 16))) (i32.const 16))))))
        unreachable)
      (local.get $p))
    (func (export "reset") (param i32)
      (global.set $bump (i32.const 1024)))
    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))
    (func (export "handle") (param i32 i32) (result i32)
      (block $refused
        (loop $more
          (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $more)))
      (i32.store (i32.shl (memory.size) (i32.const 16)) (i32.const 1))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))
  )
  (core instance $m (instantiate $M))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $m "init") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc")) (post-return (core func $m "reset"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $m "handle") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc")) (post-return (core func $m "reset"))))
)
