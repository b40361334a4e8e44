package torch

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// AvailableMemory is the memory a new allocation on d can expect, in bytes, and whether
// it is known. On the CPU: the kernel's MemAvailable, capped by the process's cgroup
// limit (cgroup v2 memory.max minus memory.current) when there is one. On CUDA it is not
// known here (ok false).
func AvailableMemory(d Device) (bytes int64, ok bool) {
	if d.IsCUDA() {
		return 0, false
	}
	avail, ok := meminfo("MemAvailable")
	if !ok {
		return 0, false
	}
	if lim, err1 := readInt("/sys/fs/cgroup/memory.max"); err1 == nil {
		if cur, err2 := readInt("/sys/fs/cgroup/memory.current"); err2 == nil && lim-cur < avail {
			avail = max(lim-cur, 0)
		}
	}
	return avail, true
}

func meminfo(key string) (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n *= 1024
		}
		return n, true
	}
	return 0, false
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64) // "max" is an error: no limit
}
