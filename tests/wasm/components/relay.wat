;; An agent that passes the text it receives through every string-carrying host
;; function: logs it at each level (trace..error), calls call-tool("mcp", "echo", text),
;; sends the tool's answer, and logs the id send returned at level debug. A refusal
;; of call-tool or send becomes its own error, unchanged.
(component
  (import "caxton:agent/host@0.1.0" (instance $host
    (type $level-def (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level (eq $level-def)))
    (export "send" (func (param "message" string) (result (result string (error string)))))
    (export "log" (func (param "level" $level) (param "text" string)))
    (export "call-tool" (func (param "server" string) (param "tool" string)
      (param "args-json" string) (result (result string (error string)))))
  ))
  (alias export $host "level" (type $level))
  (core module $Mem
    (memory (export "memory") 1)
    (global $bump (export "bump") (mut i32) (i32.const 1024))
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
      (local.get $p)))
  (core instance $mem (instantiate $Mem))
  (core func $send (canon lower (func $host "send")
    (memory (core memory $mem "memory")) (realloc (core func $mem "realloc"))))
  (core func $log (canon lower (func $host "log") (memory (core memory $mem "memory"))))
  (core func $call_tool (canon lower (func $host "call-tool")
    (memory (core memory $mem "memory")) (realloc (core func $mem "realloc"))))
  (core module $Main
    (import "mem" "memory" (memory 1))
    (import "mem" "bump" (global $bump (mut i32)))
    (import "host" "send" (func $send (param i32 i32 i32)))
    (import "host" "log" (func $log (param i32 i32 i32)))
    (import "host" "call-tool" (func $call_tool (param i32 i32 i32 i32 i32 i32 i32)))
    ;; 16..28: call-tool's return area; 48..60: send's; 32..44: our own result
    (data (i32.const 64) "mcp")
    (data (i32.const 72) "echo")

    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "handle") (param $at i32) (param $len i32) (result i32)
      (local $level i32)
      (loop $levels
        (call $log (local.get $level) (local.get $at) (local.get $len))
        (local.set $level (i32.add (local.get $level) (i32.const 1)))
        (br_if $levels (i32.lt_u (local.get $level) (i32.const 5))))
      (call $call_tool (i32.const 64) (i32.const 3) (i32.const 72) (i32.const 4)
        (local.get $at) (local.get $len) (i32.const 16))
      (if (i32.load8_u (i32.const 16))
        (then (return (call $fail (i32.const 16)))))
      (call $send (i32.load (i32.const 20)) (i32.load (i32.const 24)) (i32.const 48))
      (if (i32.load8_u (i32.const 48))
        (then (return (call $fail (i32.const 48)))))
      (call $log (i32.const 1) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    ;; err(<the error string of the result at $answer>)
    (func $fail (param $answer i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 1))
      (i32.store (i32.const 36) (i32.load offset=4 (local.get $answer)))
      (i32.store (i32.const 40) (i32.load offset=8 (local.get $answer)))
      (i32.const 32))

    (func (export "reset") (param i32)
      (global.set $bump (i32.const 1024))))
  (core instance $main (instantiate $Main
    (with "mem" (instance $mem))
    (with "host" (instance
      (export "send" (func $send)) (export "log" (func $log))
      (export "call-tool" (func $call_tool))))))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $main "init") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $main "handle") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
)
