"""Peak resident memory of the calling process."""


def peak_rss() -> int:
    """VmHWM in bytes: this process's own high-water mark. (`ru_maxrss` is no good in a child
    process: it also counts the parent's resident memory at fork time.)"""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
