//! `memcpy` and `memmove` for the static build, which links musl: musl's copy a byte at a time
//! after `rep movsq`, which costs tens of cycles to start, so a compiling call spent a quarter of
//! its time copying.
//!
//! Rust calls `memcpy` for every move of more than a few words (each rule, each string), some
//! 500,000 times when compiling 10,000 rules, nearly all of them under 256 bytes. These are the
//! routine glibc and Rust's `compiler_builtins` use for small sizes: a copy of up to 64 bytes is
//! a few loads of the first and last bytes, all made before any store (so it is also a correct
//! `memmove`), then overlapping stores; larger copies move 32 bytes a step with the last 32
//! loaded first, and from 2 KiB on, `rep movsb`, which processors with fast strings run at full
//! speed. Under musl the two are linked as `memcpy` and `memmove` in place of musl's; everywhere
//! they exist as `guardsh_memcpy` and `guardsh_memmove`, which the tests below check against a
//! byte-by-byte copy at every size to 300, around the 2 KiB switch, at every alignment and
//! overlap in both directions.

// The whole file is assembly in place of the C library's; nothing else here.
#![allow(unsafe_code)]

/// The two routines, then `$extra` (the aliases under musl). One block: an alias must be made in
/// the object that defines its target.
macro_rules! copy_routines {
    ($($extra:literal),*) => {
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl guardsh_memcpy",
    ".type guardsh_memcpy,@function",
    "guardsh_memcpy:",
    "mov rax, rdi",
    "cmp rdx, 64",
    "jbe 20f",
    "cmp rdx, 2048",
    "jae 60f",
    // 65 to 2047 bytes: 32 a step; the last 32 are loaded before anything is stored.
    "movdqu xmm4, [rsi + rdx - 16]",
    "movdqu xmm5, [rsi + rdx - 32]",
    "lea r8, [rdi + rdx - 32]",
    "50:",
    "movdqu xmm0, [rsi]",
    "movdqu xmm1, [rsi + 16]",
    "movdqu [rdi], xmm0",
    "movdqu [rdi + 16], xmm1",
    "add rsi, 32",
    "add rdi, 32",
    "sub rdx, 32",
    "cmp rdx, 32",
    "ja 50b",
    "movdqu [r8], xmm5",
    "movdqu [r8 + 16], xmm4",
    "ret",
    "60:",
    "mov rcx, rdx",
    "rep movsb",
    "ret",
    // Up to 64 bytes, every load before any store: correct for overlapping ranges too.
    "20:",
    "cmp rdx, 32",
    "jbe 30f",
    "movdqu xmm0, [rsi]",
    "movdqu xmm1, [rsi + 16]",
    "movdqu xmm2, [rsi + rdx - 32]",
    "movdqu xmm3, [rsi + rdx - 16]",
    "movdqu [rdi], xmm0",
    "movdqu [rdi + 16], xmm1",
    "movdqu [rdi + rdx - 32], xmm2",
    "movdqu [rdi + rdx - 16], xmm3",
    "ret",
    "30:",
    "cmp rdx, 16",
    "jbe 40f",
    "movdqu xmm0, [rsi]",
    "movdqu xmm1, [rsi + rdx - 16]",
    "movdqu [rdi], xmm0",
    "movdqu [rdi + rdx - 16], xmm1",
    "ret",
    "40:",
    "cmp rdx, 8",
    "jb 41f",
    "mov rcx, [rsi]",
    "mov r8, [rsi + rdx - 8]",
    "mov [rdi], rcx",
    "mov [rdi + rdx - 8], r8",
    "ret",
    "41:",
    "cmp rdx, 4",
    "jb 42f",
    "mov ecx, [rsi]",
    "mov r8d, [rsi + rdx - 4]",
    "mov [rdi], ecx",
    "mov [rdi + rdx - 4], r8d",
    "ret",
    "42:",
    "test rdx, rdx",
    "je 44f",
    "movzx ecx, byte ptr [rsi]",
    "cmp rdx, 2",
    "jb 43f",
    "movzx r8d, word ptr [rsi + rdx - 2]",
    "mov [rdi + rdx - 2], r8w",
    "43:",
    "mov [rdi], cl",
    "44:",
    "ret",
    ".size guardsh_memcpy, . - guardsh_memcpy",
    //
    // memmove: forward (the copy above) unless the destination starts inside the source, then
    // backward. Up to 64 bytes the copy above is correct either way.
    ".p2align 4",
    ".globl guardsh_memmove",
    ".type guardsh_memmove,@function",
    "guardsh_memmove:",
    "cmp rdx, 64",
    "jbe guardsh_memcpy",
    "mov rcx, rdi",
    "sub rcx, rsi",
    "cmp rcx, rdx",
    "jae guardsh_memcpy",
    "mov rax, rdi",
    "lea rdi, [rdi + rdx - 1]",
    "lea rsi, [rsi + rdx - 1]",
    "mov rcx, rdx",
    "std",
    "rep movsb",
    "cld",
    "ret",
    ".size guardsh_memmove, . - guardsh_memmove",
    $($extra),*
);
    };
}

#[cfg(all(target_arch = "x86_64", not(target_env = "musl")))]
copy_routines!();

// Under musl, these are the process's memcpy and memmove. musl's memmove is not linked either
// (it would bring musl's memcpy with it, and the two definitions would clash).
#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
copy_routines!(
    ".globl memcpy",
    ".type memcpy,@function",
    ".set memcpy, guardsh_memcpy",
    ".globl memmove",
    ".type memmove,@function",
    ".set memmove, guardsh_memmove"
);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    unsafe extern "C" {
        fn guardsh_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn guardsh_memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    }

    fn sizes() -> impl Iterator<Item = usize> {
        (0..=300).chain(2030..=2070).chain([4095, 4096, 4097, 10_000])
    }

    /// A buffer of distinct-ish bytes, so a byte from the wrong place shows.
    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(31).wrapping_add(seed * 7) % 251) as u8).collect()
    }

    #[test]
    fn memcpy_copies_every_size_at_every_alignment() {
        for n in sizes() {
            for (s_off, d_off) in [(0, 0), (1, 0), (0, 3), (5, 7), (8, 1), (15, 16)] {
                let src = pattern(n + 32, n);
                let mut dst = vec![0xAAu8; n + 64];
                let before = dst.clone();
                // SAFETY: both ranges lie inside their buffers, which do not overlap.
                let r = unsafe { guardsh_memcpy(dst.as_mut_ptr().add(d_off), src.as_ptr().add(s_off), n) };
                assert_eq!(r, dst.as_mut_ptr().wrapping_add(d_off), "returns the destination");
                assert_eq!(&dst[d_off..d_off + n], &src[s_off..s_off + n], "size {n}, offsets {s_off}/{d_off}");
                assert_eq!(&dst[..d_off], &before[..d_off], "nothing before the destination is written");
                assert_eq!(&dst[d_off + n..], &before[d_off + n..], "nothing after it is written (size {n})");
            }
        }
    }

    #[test]
    fn memmove_copies_overlapping_ranges_both_ways() {
        for n in sizes() {
            for shift in [1usize, 2, 7, 16, 31, 32, 33, 64, 65, 100, 2048] {
                for forward in [true, false] {
                    let mut buf = pattern(n + shift + 16, n + shift);
                    let (src, dst) = if forward { (shift, 0) } else { (0, shift) };
                    let mut want = buf.clone();
                    want.copy_within(src..src + n, dst);
                    let p = buf.as_mut_ptr();
                    // SAFETY: both ranges lie inside `buf`; memmove allows them to overlap.
                    let r = unsafe { guardsh_memmove(p.add(dst), p.add(src), n) };
                    assert_eq!(r, p.wrapping_add(dst), "returns the destination");
                    assert_eq!(
                        buf,
                        want,
                        "size {n}, shift {shift}, destination {}",
                        if forward { "first" } else { "second" }
                    );
                }
            }
        }
    }
}
