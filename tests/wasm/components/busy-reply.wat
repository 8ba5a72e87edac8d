;; A replying agent that takes its time: like reply.wat, but each handle first keeps
;; busy until host.now() says the number of milliseconds in its config (decimal digits,
;; e.g. "300"; none or empty: 0) have passed since the handle began, checking the clock
;; every few million loop iterations so that the journal stays short.
(component
  (import "caxton:agent/host@0.1.0" (instance $host
    (export "send" (func (param "message" string) (result (result string (error string)))))
    (export "now" (func (result u64)))
  ))
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
  (core func $now (canon lower (func $host "now")))
  (core module $Main
    (import "mem" "memory" (memory 1))
    (import "mem" "bump" (global $bump (mut i32)))
    (import "host" "send" (func $send (param i32 i32 i32)))
    (import "host" "now" (func $now (result i64)))
    ;; 16..28: host.send's return area; 32..44: our own result; 256..: the reply
    (data (i32.const 64) "{\"performative\":\"inform\",\"in_reply_to\":\"")   ;; 40 bytes
    (data (i32.const 160) "\",\"content\":\"{}\"}")                           ;; 17 bytes
    (data (i32.const 192) "no id in the message")                             ;; 20 bytes
    (global $id_at (mut i32) (i32.const 0))
    (global $id_len (mut i32) (i32.const 0))

    ;; the index of the first byte at or after $i that is not a space, or $end
    (func $skip_spaces (param $i i32) (param $end i32) (result i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
          (br_if $done (i32.ne (i32.load8_u (local.get $i)) (i32.const 32)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (local.get $i))

    ;; finds `"id"` `:` `"<value>"`; sets $id_at/$id_len and returns 1, or returns 0
    (func $find_id (param $at i32) (param $len i32) (result i32)
      (local $i i32) (local $j i32) (local $end i32)
      (local.set $end (i32.add (local.get $at) (local.get $len)))
      (local.set $i (local.get $at))
      (block $absent
        (loop $scan
          (br_if $absent (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
          (block $no_match
            ;; the four bytes `"id"` read as one little-endian i32
            (br_if $no_match (i32.ne (i32.load (local.get $i)) (i32.const 0x22646922)))
            (local.set $j (call $skip_spaces (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
            (br_if $no_match (i32.ge_u (local.get $j) (local.get $end)))
            (br_if $no_match (i32.ne (i32.load8_u (local.get $j)) (i32.const 58)))  ;; ':'
            (local.set $j (call $skip_spaces (i32.add (local.get $j) (i32.const 1)) (local.get $end)))
            (br_if $no_match (i32.ge_u (local.get $j) (local.get $end)))
            (br_if $no_match (i32.ne (i32.load8_u (local.get $j)) (i32.const 34)))  ;; '"'
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (global.set $id_at (local.get $j))
            (block $closed
              (loop $value
                (br_if $absent (i32.ge_u (local.get $j) (local.get $end)))
                (br_if $closed (i32.eq (i32.load8_u (local.get $j)) (i32.const 34)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $value)))
            (global.set $id_len (i32.sub (local.get $j) (global.get $id_at)))
            (br_if $absent (i32.eqz (global.get $id_len)))
            (br_if $absent (i32.gt_u (global.get $id_len) (i32.const 128)))
            (return (i32.const 1)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $scan)))
      (i32.const 0))

    (global $delay_ms (mut i64) (i64.const 0))

    ;; the config's leading decimal digits, as the delay
    (func (export "init") (param $at i32) (param $len i32) (result i32)
      (local $i i32) (local $c i32)
      (block $done
        (loop $digit
          (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
          (local.set $c (i32.load8_u (i32.add (local.get $at) (local.get $i))))
          (br_if $done (i32.lt_u (local.get $c) (i32.const 48)))
          (br_if $done (i32.gt_u (local.get $c) (i32.const 57)))
          (global.set $delay_ms (i64.add (i64.mul (global.get $delay_ms) (i64.const 10))
            (i64.extend_i32_u (i32.sub (local.get $c) (i32.const 48)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $digit)))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    ;; busy until now() is $delay_ms past the first reading
    (func $keep_busy
      (local $start i64) (local $n i32)
      (if (i64.eqz (global.get $delay_ms)) (then (return)))
      (local.set $start (call $now))
      (loop $check
        (local.set $n (i32.const 3000000))
        (loop $spin
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br_if $spin (local.get $n)))
        (br_if $check (i64.lt_u (i64.sub (call $now) (local.get $start)) (global.get $delay_ms)))))

    (func (export "handle") (param $at i32) (param $len i32) (result i32)
      (call $keep_busy)
      (if (i32.eqz (call $find_id (local.get $at) (local.get $len)))
        (then
          (i32.store8 (i32.const 32) (i32.const 1))
          (i32.store (i32.const 36) (i32.const 192))
          (i32.store (i32.const 40) (i32.const 20))
          (return (i32.const 32))))
      (memory.copy (i32.const 256) (i32.const 64) (i32.const 40))
      (memory.copy (i32.const 296) (global.get $id_at) (global.get $id_len))
      (memory.copy (i32.add (i32.const 296) (global.get $id_len)) (i32.const 160) (i32.const 17))
      (call $send (i32.const 256) (i32.add (i32.const 57) (global.get $id_len)) (i32.const 16))
      (if (i32.load8_u (i32.const 16))
        (then  ;; refused: hand the host's reason back as our error
          (i32.store8 (i32.const 32) (i32.const 1))
          (i32.store (i32.const 36) (i32.load (i32.const 20)))
          (i32.store (i32.const 40) (i32.load (i32.const 24)))
          (return (i32.const 32))))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "reset") (param i32)
      (global.set $bump (i32.const 1024))))
  (core instance $main (instantiate $Main
    (with "mem" (instance $mem))
    (with "host" (instance (export "send" (func $send)) (export "now" (func $now))))))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $main "init") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $main "handle") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
)
