;; A core WebAssembly module, not a component: refused at upload.
(module
  (memory (export "memory") 1)
  (func (export "handle") (param i32 i32) (result i32) (i32.const 0)))
