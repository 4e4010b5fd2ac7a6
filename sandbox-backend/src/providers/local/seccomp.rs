//! The seccomp filter every sandbox runs under, written as classic BPF by a small
//! builder (the workspace forbids `unsafe`, and the filter is a few dozen
//! instructions) and handed to bubblewrap with `--seccomp <fd>`, which loads it (with
//! `no_new_privs`) just before it execs the sandbox's first process; every process of
//! the sandbox inherits it and none can remove it.
//!
//! It refuses with `EPERM` the kernel interfaces a sandbox has no use for and which
//! widen the kernel's attack surface (most kernel privilege escalations of recent years
//! went through one of them):
//!
//! - namespaces: `unshare`, `clone` with any namespace flag, `setns` (a new user
//!   namespace hands its creator capabilities over fresh kernel objects; bubblewrap's
//!   `--disable-userns` closes the same door a second way). `clone3` answers `ENOSYS`,
//!   because its flags live in memory a filter cannot read; libc then falls back to
//!   `clone`, whose flags are checked.
//! - mounts: `mount`, `umount2`, `pivot_root`, `move_mount`, `open_tree`, `fsopen`,
//!   `fsconfig`, `fsmount`, `fspick`, `mount_setattr`.
//! - kernel keyrings: `keyctl`, `add_key`, `request_key`.
//! - `bpf`, `perf_event_open`, `userfaultfd` (the usual tools of kernel exploits).
//! - `io_uring_setup`, `io_uring_enter`, `io_uring_register`: io_uring has been the
//!   largest single source of kernel privilege escalations, and seccomp cannot see the
//!   operations it performs; programs fall back to ordinary system calls without it.
//! - `ptrace`, `process_vm_readv`, `process_vm_writev`, `pidfd_getfd`, `kcmp`: a
//!   sandbox's processes have no business reading each other's memory, and ptrace has
//!   a long record of kernel bugs; the price is that `strace` and `gdb` do not work in
//!   a sandbox.
//! - `personality` with anything but the default personalities (turning off address
//!   space randomisation helps exploits).
//! - host administration: `kexec_load`, `kexec_file_load`, `init_module`,
//!   `finit_module`, `delete_module`, `acct`, `swapon`, `swapoff`, `reboot`, `syslog`,
//!   `iopl`, `ioperm`, `open_by_handle_at`, `name_to_handle_at`, `lookup_dcookie`,
//!   `quotactl`, `quotactl_fd`, `vhangup`, `uselib`.
//! - NUMA placement: `mbind`, `migrate_pages`, `move_pages` (one sandbox must not move
//!   another's pages or pin memory on a node).
//!
//! System calls of another ABI than the native one (32-bit `int 0x80` and x32 on
//! x86-64) are refused altogether: their numbers differ and would slip past the list.
//! The filter exists for x86-64 only; elsewhere [`filter`] returns `None` and the
//! backend reports the sandbox as running without one.

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low 32 bits of the first argument (little-endian).
const ARG0_LOW: u32 = 16;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Every namespace flag of `clone` and `unshare`, `CLONE_NEWTIME` included.
pub const NAMESPACE_FLAGS: u32 = 0x0002_0000
    | 0x0200_0000
    | 0x0400_0000
    | 0x0800_0000
    | 0x1000_0000
    | 0x2000_0000
    | 0x4000_0000
    | 0x80;

/// x86-64 numbers of the system calls refused outright, with their names.
const DENIED: [(u32, &str); 51] = [
    (308, "setns"),
    (165, "mount"),
    (166, "umount2"),
    (155, "pivot_root"),
    (429, "move_mount"),
    (428, "open_tree"),
    (430, "fsopen"),
    (431, "fsconfig"),
    (432, "fsmount"),
    (433, "fspick"),
    (442, "mount_setattr"),
    (250, "keyctl"),
    (248, "add_key"),
    (249, "request_key"),
    (321, "bpf"),
    (298, "perf_event_open"),
    (323, "userfaultfd"),
    (425, "io_uring_setup"),
    (426, "io_uring_enter"),
    (427, "io_uring_register"),
    (101, "ptrace"),
    (310, "process_vm_readv"),
    (311, "process_vm_writev"),
    (438, "pidfd_getfd"),
    (312, "kcmp"),
    (246, "kexec_load"),
    (320, "kexec_file_load"),
    (175, "init_module"),
    (313, "finit_module"),
    (176, "delete_module"),
    (163, "acct"),
    (167, "swapon"),
    (168, "swapoff"),
    (169, "reboot"),
    (103, "syslog"),
    (172, "iopl"),
    (173, "ioperm"),
    (304, "open_by_handle_at"),
    (303, "name_to_handle_at"),
    (212, "lookup_dcookie"),
    (179, "quotactl"),
    (443, "quotactl_fd"),
    (153, "vhangup"),
    (134, "uselib"),
    (237, "mbind"),
    (256, "migrate_pages"),
    (279, "move_pages"),
    (174, "create_module"),
    (156, "_sysctl"),
    (180, "nfsservctl"),
    (139, "sysfs"),
];
const CLONE: u32 = 56;
const CLONE3: u32 = 435;
const UNSHARE: u32 = 272;
const PERSONALITY: u32 = 135;
/// `PER_LINUX`, `PER_LINUX32`, `UNAME26`, both, and the query `0xffffffff`.
const ALLOWED_PERSONALITIES: [u32; 5] = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The names of the refused system calls (for documentation and logs).
pub fn denied_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = DENIED.iter().map(|(_, name)| *name).collect();
    names.extend([
        "clone (namespace flags)",
        "unshare (namespace flags)",
        "clone3 (ENOSYS)",
    ]);
    names
}

fn stmt(code: u16, k: u32) -> Instruction {
    Instruction {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction { code, jt, jf, k }
}

/// The filter for this machine's architecture, or `None` where none is written.
pub fn filter() -> Option<Vec<Instruction>> {
    cfg!(target_arch = "x86_64").then(program)
}

/// The x86-64 program.
fn program() -> Vec<Instruction> {
    let deny = stmt(RET_K, RET_ERRNO | EPERM);
    let mut program = vec![
        stmt(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        deny,
        stmt(LD_W_ABS, NR),
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        deny,
    ];
    for (number, _) in DENIED {
        program.extend([jump(JEQ_K, number, 0, 1), deny]);
    }
    program.extend([jump(JEQ_K, CLONE3, 0, 1), stmt(RET_K, RET_ERRNO | ENOSYS)]);
    // `clone` and `unshare`: refused when a namespace flag is set. Each block ends in
    // a return, so a call that does not match keeps the number in the accumulator.
    for number in [CLONE, UNSHARE] {
        program.extend([
            jump(JEQ_K, number, 0, 4),
            stmt(LD_W_ABS, ARG0_LOW),
            jump(JSET_K, NAMESPACE_FLAGS, 0, 1),
            deny,
            stmt(RET_K, RET_ALLOW),
        ]);
    }
    let allowed = ALLOWED_PERSONALITIES.len() as u8;
    program.extend([
        jump(JEQ_K, PERSONALITY, 0, allowed + 3),
        stmt(LD_W_ABS, ARG0_LOW),
    ]);
    for (index, value) in ALLOWED_PERSONALITIES.into_iter().enumerate() {
        program.push(jump(JEQ_K, value, allowed - index as u8, 0));
    }
    program.extend([deny, stmt(RET_K, RET_ALLOW), stmt(RET_K, RET_ALLOW)]);
    program
}

/// The program as `struct sock_filter` array bytes, as `bwrap --seccomp` reads them.
pub fn to_bytes(program: &[Instruction]) -> Vec<u8> {
    program
        .iter()
        .flat_map(|instruction| {
            let mut bytes = Vec::with_capacity(8);
            bytes.extend(instruction.code.to_ne_bytes());
            bytes.push(instruction.jt);
            bytes.push(instruction.jf);
            bytes.extend(instruction.k.to_ne_bytes());
            bytes
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` over a `seccomp_data` the way the kernel does (the subset of
    /// classic BPF the builder emits).
    fn evaluate(program: &[Instruction], arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = Vec::new();
        data.extend(nr.to_le_bytes());
        data.extend(arch.to_le_bytes());
        data.extend(0u64.to_le_bytes());
        data.extend(arg0.to_le_bytes());
        let load = |offset: u32| {
            let offset = offset as usize;
            u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap())
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let instruction = program[pc];
            pc += 1;
            match instruction.code {
                LD_W_ABS => acc = load(instruction.k),
                RET_K => return instruction.k,
                JEQ_K | JGE_K | JSET_K => {
                    let taken = match instruction.code {
                        JEQ_K => acc == instruction.k,
                        JGE_K => acc >= instruction.k,
                        _ => acc & instruction.k != 0,
                    };
                    pc += usize::from(if taken {
                        instruction.jt
                    } else {
                        instruction.jf
                    });
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn x86(nr: u32, arg0: u64) -> u32 {
        evaluate(&program(), AUDIT_ARCH_X86_64, nr, arg0)
    }

    const DENIED_EPERM: u32 = RET_ERRNO | EPERM;

    #[test]
    fn every_listed_call_is_refused_and_ordinary_calls_pass() {
        for (number, name) in DENIED {
            assert_eq!(x86(number, 0), DENIED_EPERM, "{name}");
        }
        // read, write, openat, execve, wait4, socket, connect.
        for number in [0, 1, 257, 59, 61, 41, 42] {
            assert_eq!(x86(number, 0), RET_ALLOW, "syscall {number}");
        }
    }

    #[test]
    fn clone_and_unshare_are_refused_only_with_namespace_flags() {
        // What glibc's fork and pthread_create pass.
        let fork_flags = 0x0120_0011;
        let thread_flags = 0x003d_0f00;
        assert_eq!(x86(CLONE, fork_flags), RET_ALLOW);
        assert_eq!(x86(CLONE, thread_flags), RET_ALLOW);
        for flag in [0x1000_0000u64, 0x0002_0000, 0x4000_0000, 0x2000_0000, 0x80] {
            assert_eq!(x86(CLONE, fork_flags | flag), DENIED_EPERM);
            assert_eq!(x86(UNSHARE, flag), DENIED_EPERM);
        }
        // unshare(CLONE_FILES) stays allowed.
        assert_eq!(x86(UNSHARE, 0x400), RET_ALLOW);
        assert_eq!(x86(CLONE3, 0), RET_ERRNO | ENOSYS);
    }

    #[test]
    fn only_default_personalities_are_allowed() {
        for value in ALLOWED_PERSONALITIES {
            assert_eq!(x86(PERSONALITY, u64::from(value)), RET_ALLOW);
        }
        // ADDR_NO_RANDOMIZE.
        assert_eq!(x86(PERSONALITY, 0x0004_0000), DENIED_EPERM);
    }

    #[test]
    fn foreign_abis_are_refused() {
        assert_eq!(evaluate(&program(), 0x4000_0003, 1, 0), DENIED_EPERM);
        assert_eq!(x86(X32_SYSCALL_BIT | 1, 0), DENIED_EPERM);
    }

    #[test]
    fn the_bytes_are_eight_per_instruction() {
        let program = program();
        assert_eq!(to_bytes(&program).len(), program.len() * 8);
        assert!(program.len() < 4096);
    }
}
