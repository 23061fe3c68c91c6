package attach

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// loopAttach puts a loop device on backing, showing size bytes from off
// (size 0: to the end of the file), and returns the device's path. The
// device is not auto-cleared: it lasts until [loopDetach].
func loopAttach(backing string, readOnly bool, off, size int64) (string, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	bf, err := os.OpenFile(backing, flag, 0)
	if err != nil {
		return "", err
	}
	defer bf.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	defer ctl.Close()

	info := unix.LoopInfo64{
		Offset:    uint64(off),
		Sizelimit: uint64(size),
		Flags:     unix.LO_FLAGS_PARTSCAN,
	}
	if readOnly {
		info.Flags |= unix.LO_FLAGS_READ_ONLY
	}
	copy(info.File_name[:len(info.File_name)-1], backing)

	// Another process may take the free device between the two calls;
	// the configure then fails with EBUSY and we ask again.
	for try := 0; try < 20; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("attach: LOOP_CTL_GET_FREE: %w", err)
		}
		dev := "/dev/loop" + strconv.Itoa(n)
		err = configure(dev, int(bf.Fd()), &info)
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("attach: configure %s: %w", dev, err)
		}
		return dev, nil
	}
	return "", fmt.Errorf("attach: no free loop device: %w", unix.EBUSY)
}

// configure binds the loop device dev to the open file fd with LOOP_CONFIGURE,
// or LOOP_SET_FD and LOOP_SET_STATUS64 on kernels before 5.8.
func configure(dev string, fd int, info *unix.LoopInfo64) error {
	var lf *os.File
	var err error
	// devtmpfs creates the node shortly after LOOP_CTL_GET_FREE adds
	// the device.
	for i := 0; i < 50; i++ {
		lf, err = os.OpenFile(dev, os.O_RDWR, 0)
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer lf.Close()
	cfg := unix.LoopConfig{Fd: uint32(fd), Info: *info}
	err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return err
	}
	if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_SET_FD, fd); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(int(lf.Fd()), info); err != nil {
		unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0) //nolint:errcheck // undoing
		return err
	}
	return nil
}

// loopDetach clears dev and waits until the kernel has let go of its
// backing file (a busy device is cleared on its last close).
func loopDetach(dev string) error {
	lf, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("attach: detach %s: %w", dev, err)
	}
	err = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
	lf.Close()
	if err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("attach: detach %s: LOOP_CLR_FD: %w", dev, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for backingFile(dev) != "" {
		if time.Now().After(deadline) {
			return fmt.Errorf("attach: detach %s: device still in use: %w", dev, unix.EBUSY)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// backingFile returns the file behind loop device dev, or "" when it has
// none.
func backingFile(dev string) string {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop/backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// loopsBacking lists the loop devices whose backing file is path.
func loopsBacking(path string) []string {
	var devs []string
	ms, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, m := range ms {
		b, err := os.ReadFile(m)
		if err != nil || strings.TrimSuffix(string(b), "\n") != path {
			continue
		}
		devs = append(devs, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(m))))
	}
	return devs
}

// mountedFrom returns the mount point of dev or of one of its
// partitions, or "" when none is mounted.
func mountedFrom(dev string) (string, error) {
	name := filepath.Base(dev)
	nums := map[string]bool{}
	ds, _ := filepath.Glob(filepath.Join("/sys/block", name, "dev"))
	ps, _ := filepath.Glob(filepath.Join("/sys/block", name, name+"p*", "dev"))
	for _, p := range append(ds, ps...) {
		if b, err := os.ReadFile(p); err == nil {
			nums[strings.TrimSpace(string(b))] = true
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && nums[f[2]] {
			return f[4], nil
		}
	}
	return "", nil
}
