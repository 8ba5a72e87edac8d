;; tool-caller.wat that also logs and asks the host for now() and random(), as a debugged
;; agent would: `init(config)` keeps the config, a JSON array ["SERVER", "TOOL", {ARGS}];
;; `handle` logs "asking the tool" (info), calls now() and random(), calls
;; call-tool(SERVER, TOOL, "{ARGS}"), logs the answer (info) or the error (warn), and
;; returns ok when the tool answered, or err(<the host's error text>) when not.
(component
  (import "caxton:agent/host@0.1.0" (instance $host
    (type $level-def (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level (eq $level-def)))
    (export "log" (func (param "level" $level) (param "text" string)))
    (export "now" (func (result u64)))
    (export "random" (func (result u64)))
    (export "call-tool" (func (param "server" string) (param "tool" string)
      (param "args-json" string) (result (result string (error string)))))
  ))
  (alias export $host "level" (type $level))
  (core module $Mem
    (memory (export "memory") 1)
    (global $bump (export "bump") (mut i32) (i32.const 32768))
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
  (core func $call_tool (canon lower (func $host "call-tool")
    (memory (core memory $mem "memory")) (realloc (core func $mem "realloc"))))
  (core func $log (canon lower (func $host "log") (memory (core memory $mem "memory"))))
  (core func $now (canon lower (func $host "now")))
  (core func $random (canon lower (func $host "random")))
  (core module $Main
    (import "mem" "memory" (memory 1))
    (import "mem" "bump" (global $bump (mut i32)))
    (import "host" "call-tool" (func $call_tool (param i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "log" (func $log (param i32 i32 i32)))
    (import "host" "now" (func $now (result i64)))
    (import "host" "random" (func $random (result i64)))
    ;; 256..271: the first log line
    (data (memory 0) (i32.const 256) "asking the tool")
    ;; 16..28: call-tool's return area; 32..44: our own result;
    ;; 64..88: the config's three parts as (offset, length) pairs; 1024..32767: the config
;; $find: the index of the first $byte in [$from, $end), or $end
    (func $find (param $from i32) (param $end i32) (param $byte i32) (result i32)
      (block $found
        (loop $scan
          (br_if $found (i32.ge_u (local.get $from) (local.get $end)))
          (br_if $found (i32.eq (i32.load8_u (local.get $from)) (local.get $byte)))
          (local.set $from (i32.add (local.get $from) (i32.const 1)))
          (br $scan)))
      (local.get $from))

    ;; config: ["SERVER", "TOOL", {ARGS}] (no quotes in the names): the names are between
    ;; the first four quotes, the arguments from the next '{' to the last '}'
    (func (export "init") (param $at i32) (param $len i32) (result i32)
      (local $end i32) (local $q1 i32) (local $q2 i32) (local $q3 i32) (local $q4 i32)
      (local $a i32) (local $b i32)
      (if (i32.gt_u (local.get $len) (i32.const 31000)) (then unreachable))
      (memory.copy (i32.const 1024) (local.get $at) (local.get $len))
      (local.set $end (i32.add (i32.const 1024) (local.get $len)))
      (local.set $q1 (call $find (i32.const 1024) (local.get $end) (i32.const 34)))
      (local.set $q2 (call $find (i32.add (local.get $q1) (i32.const 1)) (local.get $end) (i32.const 34)))
      (local.set $q3 (call $find (i32.add (local.get $q2) (i32.const 1)) (local.get $end) (i32.const 34)))
      (local.set $q4 (call $find (i32.add (local.get $q3) (i32.const 1)) (local.get $end) (i32.const 34)))
      (if (i32.ge_u (local.get $q4) (local.get $end)) (then unreachable))
      (i32.store (i32.const 64) (i32.add (local.get $q1) (i32.const 1)))
      (i32.store (i32.const 68) (i32.sub (local.get $q2) (i32.add (local.get $q1) (i32.const 1))))
      (i32.store (i32.const 72) (i32.add (local.get $q3) (i32.const 1)))
      (i32.store (i32.const 76) (i32.sub (local.get $q4) (i32.add (local.get $q3) (i32.const 1))))
      (local.set $a (call $find (local.get $q4) (local.get $end) (i32.const 123)))
      (local.set $b (local.get $end))
      (block $found
        (loop $back
          (br_if $found (i32.le_u (local.get $b) (local.get $a)))
          (local.set $b (i32.sub (local.get $b) (i32.const 1)))
          (br_if $found (i32.eq (i32.load8_u (local.get $b)) (i32.const 125)))
          (br $back)))
      (i32.store (i32.const 80) (local.get $a))
      (i32.store (i32.const 84) (i32.const 0))
      (if (i32.lt_u (local.get $a) (local.get $end))
        (then (i32.store (i32.const 84) (i32.add (i32.sub (local.get $b) (local.get $a)) (i32.const 1)))))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "handle") (param $at i32) (param $len i32) (result i32)
      (call $log (i32.const 2) (i32.const 256) (i32.const 15))
      (drop (call $now))
      (drop (call $random))
      (call $call_tool
        (i32.load (i32.const 64)) (i32.load (i32.const 68))
        (i32.load (i32.const 72)) (i32.load (i32.const 76))
        (i32.load (i32.const 80)) (i32.load (i32.const 84))
        (i32.const 16))
      ;; the answer, or the error, as the second log line: info, or warn
      (call $log (i32.add (i32.const 2) (i32.load8_u (i32.const 16)))
        (i32.load (i32.const 20)) (i32.load (i32.const 24)))
      (if (i32.load8_u (i32.const 16))
        (then
          (i32.store8 (i32.const 32) (i32.const 1))
          (i32.store (i32.const 36) (i32.load (i32.const 20)))
          (i32.store (i32.const 40) (i32.load (i32.const 24)))
          (return (i32.const 32))))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "reset") (param i32)
      (global.set $bump (i32.const 32768))))
  (core instance $main (instantiate $Main
    (with "mem" (instance $mem))
    (with "host" (instance
      (export "call-tool" (func $call_tool)) (export "log" (func $log))
      (export "now" (func $now)) (export "random" (func $random))))))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $main "init") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $main "handle") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
)
