;; A quoting agent: to every message it answers
;; {"performative":"inform","in_reply_to":"<id>","content":"<the message's content>"}:
;; it replies what it was sent (the content's JSON string copied as it is, escapes
;; included; `{}` when it finds no "content"). It returns err "no id in the message" when
;; it finds no "id". (Like bidder.wat, it reads the envelope's bytes, not its JSON.)
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
    (data (i32.const 112) "\",\"content\":\"")                                ;; 13 bytes
    (data (i32.const 128) "\"}")                                              ;; 2 bytes
    (data (i32.const 136) "{}")                                               ;; 2 bytes
    (data (i32.const 192) "no id in the message")                             ;; 20 bytes
    (data (i32.const 224) "\"content\"")                                      ;; 9 bytes
    (global $content_at (mut i32) (i32.const 136))
    (global $content_len (mut i32) (i32.const 2))
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


    ;; finds `"content"` `:` `"<value>"` (escapes skipped); sets $content_at/$content_len
    (func $find_content (param $at i32) (param $len i32)
      (local $i i32) (local $j i32) (local $end i32) (local $k i32)
      (local.set $end (i32.add (local.get $at) (local.get $len)))
      (local.set $i (local.get $at))
      (block $absent
        (loop $scan
          (br_if $absent (i32.gt_u (i32.add (local.get $i) (i32.const 9)) (local.get $end)))
          (block $no_match
            (local.set $k (i32.const 0))
            (block $same
              (loop $compare
                (br_if $same (i32.eq (local.get $k) (i32.const 9)))
                (br_if $no_match (i32.ne
                  (i32.load8_u (i32.add (local.get $i) (local.get $k)))
                  (i32.load8_u (i32.add (i32.const 224) (local.get $k)))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $compare)))
            (local.set $j (call $skip_spaces (i32.add (local.get $i) (i32.const 9)) (local.get $end)))
            (br_if $no_match (i32.ge_u (local.get $j) (local.get $end)))
            (br_if $no_match (i32.ne (i32.load8_u (local.get $j)) (i32.const 58)))  ;; ':'
            (local.set $j (call $skip_spaces (i32.add (local.get $j) (i32.const 1)) (local.get $end)))
            (br_if $no_match (i32.ge_u (local.get $j) (local.get $end)))
            (br_if $no_match (i32.ne (i32.load8_u (local.get $j)) (i32.const 34)))  ;; '"'
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (local.set $k (local.get $j))
            (block $closed
              (loop $value
                (br_if $absent (i32.ge_u (local.get $k) (local.get $end)))
                (br_if $closed (i32.eq (i32.load8_u (local.get $k)) (i32.const 34)))
                (if (i32.eq (i32.load8_u (local.get $k)) (i32.const 92))       ;; '\\': skip two
                  (then (local.set $k (i32.add (local.get $k) (i32.const 1)))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $value)))
            (global.set $content_at (local.get $j))
            (global.set $content_len (i32.sub (local.get $k) (local.get $j)))
            (return))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $scan))))

    ;; appends $n bytes from $from at $at; returns the new end
    (func $put (param $at i32) (param $from i32) (param $n i32) (result i32)
      (memory.copy (local.get $at) (local.get $from) (local.get $n))
      (i32.add (local.get $at) (local.get $n)))

    ;; sends the inform quoting the content, written at $out; our result at 32
    (func $answer (param $out i32) (result i32)
      (local $at i32)
      (local.set $at (call $put (local.get $out) (i32.const 64) (i32.const 40)))
      (local.set $at (call $put (local.get $at) (global.get $id_at) (global.get $id_len)))
      (local.set $at (call $put (local.get $at) (i32.const 112) (i32.const 13)))
      (local.set $at (call $put (local.get $at) (global.get $content_at) (global.get $content_len)))
      (local.set $at (call $put (local.get $at) (i32.const 128) (i32.const 2)))
      (call $send (local.get $out) (i32.sub (local.get $at) (local.get $out)) (i32.const 16))
      (if (i32.load8_u (i32.const 16))
        (then
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
      (local $out i32)
      ;; the reply, at most the message and its framing, goes above all that was allocated
      (local.set $out (global.get $bump))
      (global.set $bump (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 128))))
      (if (i32.gt_u (global.get $bump) (i32.shl (memory.size) (i32.const 16)))
        (then (drop (memory.grow (i32.add (i32.const 1) (i32.shr_u
          (i32.sub (global.get $bump) (i32.shl (memory.size) (i32.const 16))) (i32.const 16)))))))
      (if (i32.eqz (call $find_id (local.get $at) (local.get $len)))
        (then
          (i32.store8 (i32.const 32) (i32.const 1))
          (i32.store (i32.const 36) (i32.const 192))
          (i32.store (i32.const 40) (i32.const 20))
          (return (i32.const 32))))
      (global.set $content_at (i32.const 136))
      (global.set $content_len (i32.const 2))
      (call $find_content (local.get $at) (local.get $len))
      (call $answer (local.get $out)))

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
