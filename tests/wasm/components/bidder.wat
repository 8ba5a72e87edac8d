;; A contract-net bidder: to a message whose performative is "cfp" it answers
;; {"performative":"propose","in_reply_to":"<id>","content":"{\"price\":7}"}, to an
;; "accept-proposal" {"performative":"inform","in_reply_to":"<id>","content":"{}"},
;; and to anything else nothing. (It looks for the bytes "cfp" and "accept-proposal",
;; quotes included, anywhere in the envelope: enough for tests and benchmarks.)
(component
  (import "caxton:agent/host@0.1.0" (instance $host
    (export "send" (func (param "message" string) (result (result string (error string)))))
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
  (core module $Main
    (import "mem" "memory" (memory 1))
    (import "mem" "bump" (global $bump (mut i32)))
    (import "host" "send" (func $send (param i32 i32 i32)))
    ;; 16..28: host.send's return area; 32..44: our own result; 512..: the reply
    (data (i32.const 64) "{\"performative\":\"inform\",\"in_reply_to\":\"")    ;; 40 bytes
    (data (i32.const 112) "{\"performative\":\"propose\",\"in_reply_to\":\"")  ;; 41 bytes
    (data (i32.const 160) "\",\"content\":\"{}\"}")                           ;; 17 bytes
    (data (i32.const 192) "no id in the message")                             ;; 20 bytes
    (data (i32.const 224) "\"cfp\"")                                          ;; 5 bytes
    (data (i32.const 232) "\"accept-proposal\"")                              ;; 17 bytes
    (data (i32.const 256) "\",\"content\":\"{\\\"price\\\":7}\"}")            ;; 28 bytes
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

    ;; 1 when the $n bytes at $needle occur in [$at, $at + $len), else 0
    (func $contains (param $at i32) (param $len i32) (param $needle i32) (param $n i32) (result i32)
      (local $i i32) (local $k i32) (local $last i32)
      (if (i32.lt_u (local.get $len) (local.get $n)) (then (return (i32.const 0))))
      (local.set $last (i32.sub (i32.add (local.get $at) (local.get $len)) (local.get $n)))
      (local.set $i (local.get $at))
      (block $absent
        (loop $scan
          (br_if $absent (i32.gt_u (local.get $i) (local.get $last)))
          (local.set $k (i32.const 0))
          (block $differ
            (loop $compare
              (if (i32.eq (local.get $k) (local.get $n)) (then (return (i32.const 1))))
              (br_if $differ (i32.ne
                (i32.load8_u (i32.add (local.get $i) (local.get $k)))
                (i32.load8_u (i32.add (local.get $needle) (local.get $k)))))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br $compare)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $scan)))
      (i32.const 0))

    ;; sends prefix + the handled message's id + suffix; our result at 32
    (func $answer (param $prefix i32) (param $prefix_len i32) (param $suffix i32)
        (param $suffix_len i32) (result i32)
      (local $at i32)
      (memory.copy (i32.const 512) (local.get $prefix) (local.get $prefix_len))
      (local.set $at (i32.add (i32.const 512) (local.get $prefix_len)))
      (memory.copy (local.get $at) (global.get $id_at) (global.get $id_len))
      (local.set $at (i32.add (local.get $at) (global.get $id_len)))
      (memory.copy (local.get $at) (local.get $suffix) (local.get $suffix_len))
      (local.set $at (i32.add (local.get $at) (local.get $suffix_len)))
      (call $send (i32.const 512) (i32.sub (local.get $at) (i32.const 512)) (i32.const 16))
      (if (i32.load8_u (i32.const 16))
        (then  ;; refused: hand the host's reason back as our error
          (i32.store8 (i32.const 32) (i32.const 1))
          (i32.store (i32.const 36) (i32.load (i32.const 20)))
          (i32.store (i32.const 40) (i32.load (i32.const 24)))
          (return (i32.const 32))))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "handle") (param $at i32) (param $len i32) (result i32)
      (if (i32.eqz (call $find_id (local.get $at) (local.get $len)))
        (then
          (i32.store8 (i32.const 32) (i32.const 1))
          (i32.store (i32.const 36) (i32.const 192))
          (i32.store (i32.const 40) (i32.const 20))
          (return (i32.const 32))))
      (if (call $contains (local.get $at) (local.get $len) (i32.const 224) (i32.const 5))
        (then (return (call $answer (i32.const 112) (i32.const 41) (i32.const 256) (i32.const 28)))))
      (if (call $contains (local.get $at) (local.get $len) (i32.const 232) (i32.const 17))
        (then (return (call $answer (i32.const 64) (i32.const 40) (i32.const 160) (i32.const 17)))))
      (i32.store8 (i32.const 32) (i32.const 0))
      (i32.const 32))

    (func (export "reset") (param i32)
      (global.set $bump (i32.const 1024))))
  (core instance $main (instantiate $Main
    (with "mem" (instance $mem))
    (with "host" (instance (export "send" (func $send))))))
  (func (export "init") (param "config" string) (result (result (error string)))
    (canon lift (core func $main "init") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
  (func (export "handle") (param "message" string) (result (result (error string)))
    (canon lift (core func $main "handle") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc")) (post-return (core func $main "reset"))))
)
