# ci/targets.sh (sourced by the test scripts): the targets of `make release`, each one's
# Debian architecture, and what runs its binary on this x86_64 machine: the kernel runs
# i686 natively, qemu-user (Debian's qemu-user) the ARM ones.
TARGETS=(x86_64-unknown-linux-musl i686-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)

deb_arch_for() {
    case $1 in
    x86_64-*) echo amd64 ;;
    i686-*) echo i386 ;;
    aarch64-*) echo arm64 ;;
    armv7-*) echo armhf ;;
    esac
}

# The emulator's path, or nothing for a binary this machine runs itself.
runner_for() {
    case $1 in
    aarch64-*) command -v qemu-aarch64 ;;
    armv7-*) command -v qemu-arm ;;
    esac
}
