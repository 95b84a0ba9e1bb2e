//! Minimal static x86-64 Linux executables from raw machine code: one loadable segment, no
//! sections, entry right after the headers. Tests use them to make function images (an exit
//! code, an echo, an endless loop) without a cross toolchain; real functions are Rust binaries
//! linked statically.

/// Where the segment is loaded.
const BASE: u64 = 0x40_0000;
const HEADERS: u64 = 64 + 56;

/// An executable running `code` (position independent: it may address itself RIP-relatively).
pub fn static_elf(code: &[u8]) -> Vec<u8> {
    let total = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers follow the ELF header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // read + execute
    for word in [0, BASE, BASE, total, total, 0x1000u64] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(code);
    elf
}

/// Writes "ok\n" to stdout and exits 0.
pub const PRINT_OK: &[u8] = &[
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
    0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1 (stdout)
    0x48, 0x8d, 0x35, 0x10, 0x00, 0x00, 0x00, // lea rsi, [rip + 16] (the message)
    0xba, 0x03, 0x00, 0x00, 0x00, // mov edx, 3
    0x0f, 0x05, // syscall
    0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
    0x31, 0xff, // xor edi, edi
    0x0f, 0x05, // syscall
    b'o', b'k', b'\n',
];

/// Reads up to 64 bytes from stdin, writes them to stdout, exits 0.
pub const ECHO: &[u8] = &[
    0x31, 0xc0, // xor eax, eax (read)
    0x31, 0xff, // xor edi, edi (stdin)
    0x48, 0x89, 0xe6, // mov rsi, rsp
    0xba, 0x40, 0x00, 0x00, 0x00, // mov edx, 64
    0x0f, 0x05, // syscall
    0x89, 0xc2, // mov edx, eax (bytes read)
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
    0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1
    0x0f, 0x05, // syscall
    0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
    0x31, 0xff, // xor edi, edi
    0x0f, 0x05, // syscall
];

/// Exits with code 3.
pub const EXIT_3: &[u8] = &[
    0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
    0xbf, 0x03, 0x00, 0x00, 0x00, // mov edi, 3
    0x0f, 0x05, // syscall
];

/// Spins forever.
pub const SPIN: &[u8] = &[0xeb, 0xfe]; // jmp $

/// Maps and touches 1 MiB after 1 MiB, forever: a memory bomb.
pub const MEMORY_BOMB: &[u8] = &[
    0xb8, 0x09, 0x00, 0x00, 0x00, // loop: mov eax, 9 (mmap)
    0x31, 0xff, // xor edi, edi (anywhere)
    0xbe, 0x00, 0x00, 0x10, 0x00, // mov esi, 1 MiB
    0xba, 0x03, 0x00, 0x00, 0x00, // mov edx, PROT_READ | PROT_WRITE
    0x41, 0xba, 0x22, 0x00, 0x00, 0x00, // mov r10d, MAP_PRIVATE | MAP_ANONYMOUS
    0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, // mov r8, -1
    0x45, 0x31, 0xc9, // xor r9d, r9d
    0x0f, 0x05, // syscall
    0xb9, 0x00, 0x01, 0x00, 0x00, // mov ecx, 256 (pages)
    0xc6, 0x00, 0x01, // touch: mov byte [rax], 1
    0x48, 0x05, 0x00, 0x10, 0x00, 0x00, // add rax, 4096
    0xff, 0xc9, // dec ecx
    0x75, 0xf3, // jnz touch
    0xeb, 0xc9, // jmp loop
];

fn call(number: u32, rdi: u32, rsi: u32) -> Vec<u8> {
    let mut code = vec![0xb8]; // mov eax, number
    code.extend_from_slice(&number.to_le_bytes());
    code.push(0xbf); // mov edi, rdi
    code.extend_from_slice(&rdi.to_le_bytes());
    code.push(0xbe); // mov esi, rsi
    code.extend_from_slice(&rsi.to_le_bytes());
    code.extend_from_slice(&[0x31, 0xd2, 0x0f, 0x05]); // xor edx, edx; syscall
    code
}

const EXIT_0: &[u8] = &[0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05];

/// Makes system call `number` with the first two arguments given (the others zero), then exits
/// 0 if it survived.
pub fn syscall_then_exit(number: u32, rdi: u32, rsi: u32) -> Vec<u8> {
    let mut code = call(number, rdi, rsi);
    code.extend_from_slice(EXIT_0);
    code
}

/// Forks; the child makes system call `number` (as [`syscall_then_exit`]); the parent waits for
/// the child and exits 0 whatever happened to it.
pub fn forked_syscall(number: u32, rdi: u32, rsi: u32) -> Vec<u8> {
    let child = syscall_then_exit(number, rdi, rsi);
    let mut code = vec![0xb8, 0x39, 0x00, 0x00, 0x00, 0x0f, 0x05]; // mov eax, 57 (fork); syscall
    code.extend_from_slice(&[0x85, 0xc0]); // test eax, eax
    code.extend_from_slice(&[0x75, u8::try_from(child.len()).expect("a short child")]); // jnz parent
    code.extend_from_slice(&child);
    // parent: wait4(-1, NULL, 0, NULL), then exit 0
    code.extend_from_slice(&[0xb8, 0x3d, 0x00, 0x00, 0x00, 0xbf, 0xff, 0xff, 0xff, 0xff]);
    code.extend_from_slice(&[0x31, 0xf6, 0x31, 0xd2, 0x45, 0x31, 0xd2, 0x0f, 0x05]);
    code.extend_from_slice(EXIT_0);
    code
}
