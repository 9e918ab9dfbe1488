package netfault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Namespace names are nsPrefixClient or nsPrefixServer, the test
// process's pid, and a counter, so that concurrent runs never collide
// and a later run can remove what a killed one left behind.
const (
	nsPrefixClient = "h2c-"
	nsPrefixServer = "h2s-"
	netnsDir       = "/var/run/netns"
	tunName        = "nf0"
	ipTimeout      = 10 * time.Second
)

// ipCmd runs the ip tool with args, bounded in time.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStaleNamespaces deletes namespaces of ours whose test process is
// gone (a run killed before its cleanup).
func removeStaleNamespaces() {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		var rest string
		switch {
		case strings.HasPrefix(name, nsPrefixClient):
			rest = name[len(nsPrefixClient):]
		case strings.HasPrefix(name, nsPrefixServer):
			rest = name[len(nsPrefixServer):]
		default:
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			continue // its run is alive
		}
		ipCmd("netns", "del", name)
	}
}

// enterNetns moves the calling goroutine's OS thread into namespace ns.
// The caller must have called runtime.LockOSThread and must never unlock:
// its goroutine then ends with the thread, which the runtime discards.
func enterNetns(ns string) error {
	if sysSetns == 0 {
		return fmt.Errorf("setns: not known on %s", runtime.GOARCH)
	}
	f, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, e := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		return fmt.Errorf("setns %s: %w", ns, e)
	}
	return nil
}

// inNetns runs f on a fresh OS thread inside namespace ns and returns
// its result; the thread is discarded afterwards.
func inNetns[T any](ns string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		if err := enterNetns(ns); err != nil {
			var zero T
			ch <- result{zero, err}
			return
		}
		v, err := f()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// ifreq is struct ifreq as TUNSETIFF reads it: a name and flags.
type ifreq struct {
	name  [16]byte
	flags uint16
	_     [22]byte
}

// openTUN creates TUN device tunName in namespace ns (IFF_TUN|IFF_NO_PI:
// reads and writes are bare IP packets) and returns it, non-blocking,
// so reads wait in Go's poller and Close ends them. The device lives as
// long as the file is open.
func openTUN(ns string) (*os.File, error) {
	return inNetns(ns, func() (*os.File, error) {
		fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open /dev/net/tun: %w", err)
		}
		var req ifreq
		copy(req.name[:], tunName)
		req.flags = syscall.IFF_TUN | syscall.IFF_NO_PI
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TUNSETIFF, uintptr(unsafe.Pointer(&req))); e != 0 {
			syscall.Close(fd)
			return nil, fmt.Errorf("TUNSETIFF: %w", e)
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return nil, err
		}
		return os.NewFile(uintptr(fd), "tun:"+ns), nil
	})
}

// errNoRoot says why the fault tests cannot run here.
var errNoRoot = errors.New("network namespaces need root")
