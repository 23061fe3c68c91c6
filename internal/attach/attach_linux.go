package attach

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vhdkit/vhd/fusemount"
)

// File names inside a state directory.
const (
	stateFile = "state.json"
	exitFile  = "exit"       // written by the server after closing the disk
	logFile   = "server.log" // the server's stdout and stderr
	mntDir    = "mnt"
)

// readyTimeout bounds the wait for the server to mount; exitTimeout the
// wait for it to close the disk after the unmount.
var (
	readyTimeout = 30 * time.Second
	exitTimeout  = 60 * time.Second
)

// Attach attaches the disk described by r and returns the block device.
// It fails with an error wrapping [fs.ErrExist] when the disk is already
// attached.
func Attach(r Request) (string, error) {
	if err := canAttach(!r.Direct); err != nil {
		return "", err
	}
	if r.Offset%512 != 0 || r.Length%512 != 0 || r.Offset < 0 || r.Length < 0 {
		return "", fmt.Errorf("attach: range %d+%d is not a multiple of 512 bytes", r.Offset, r.Length)
	}
	path, err := canonical(r.Path)
	if err != nil {
		return "", err
	}
	dir := stateDir(path)
	if err := claim(dir, path); err != nil {
		return "", err
	}
	st := &State{Path: path, ReadOnly: r.ReadOnly, Served: !r.Direct,
		Offset: r.Offset, Length: r.Length, Dir: dir}
	dev, err := attach(st, r)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dev, nil
}

func attach(st *State, r Request) (string, error) {
	if err := writeState(st); err != nil {
		return "", err
	}
	backing := st.Path
	off, size := r.Offset, r.Length
	if r.Direct {
		end := r.Size
		if size == 0 || off+size > end {
			size = end - off
		}
		if size <= 0 {
			return "", fmt.Errorf("attach: range %d+%d outside the disk's %d bytes", r.Offset, r.Length, end)
		}
	} else {
		pid, err := startServer(st.Dir)
		if err != nil {
			return "", err
		}
		st.PID = pid
		st.Mountpoint = filepath.Join(st.Dir, mntDir)
		backing = filepath.Join(st.Mountpoint, "disk")
	}
	dev, err := loopAttach(backing, st.ReadOnly, off, size)
	if err != nil {
		if st.Served {
			stopServer(st)
		}
		return "", err
	}
	st.Device = dev
	if err := writeState(st); err != nil {
		loopDetach(dev) //nolint:errcheck // undoing
		if st.Served {
			stopServer(st)
		}
		return "", err
	}
	return dev, nil
}

// geteuid is os.Geteuid, replaced by tests.
var geteuid = os.Geteuid

// canAttach says why this process cannot attach, if it cannot.
func canAttach(served bool) error {
	if geteuid() != 0 {
		return fmt.Errorf("attach: loop devices need root: %w", errors.ErrUnsupported)
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Errorf("attach: no loop device support (%v): %w", err, errors.ErrUnsupported)
	}
	if served {
		if _, err := os.Stat("/dev/fuse"); err != nil {
			return fmt.Errorf("attach: no FUSE support (%v): %w", err, errors.ErrUnsupported)
		}
	}
	return nil
}

// canonical returns the absolute path of the file at p, symbolic links
// resolved, so one disk always has one state directory.
func canonical(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	a, err = filepath.EvalSymlinks(a)
	if err != nil {
		return "", err
	}
	return a, nil
}

// stateDir names the state directory of the disk at path.
func stateDir(path string) string {
	h := sha256.Sum256([]byte(path))
	return filepath.Join(runDir(), hex.EncodeToString(h[:8]))
}

// claim creates dir, or reports that the disk is attached. A directory
// left by an attach that no longer exists (a crash, a reboot of the
// loop devices) is cleaned up and reused.
func claim(dir, path string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, rerr := readState(dir)
	if rerr == nil && st.live() {
		return fmt.Errorf("already attached as %s: %w", st.Device, fs.ErrExist)
	}
	// Another attach of the same disk may be under way: it has not
	// recorded its device yet but its server (or it) is young.
	if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) < readyTimeout &&
		(rerr != nil || (st.PID > 0 && alive(st.PID))) {
		return fmt.Errorf("being attached by another process: %w", fs.ErrExist)
	}
	if err := cleanStale(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o700)
}

// live reports whether the state's loop device still shows the disk.
func (st *State) live() bool {
	if st.Device == "" {
		return false
	}
	want := st.Path
	if st.Served {
		want = filepath.Join(st.Dir, mntDir, "disk")
	}
	return backingFile(st.Device) == want
}

// cleanStale removes a state directory whose attach is gone.
func cleanStale(dir string) error {
	mnt := filepath.Join(dir, mntDir)
	if isMountPoint(mnt) {
		if err := unmount(mnt); err != nil {
			return fmt.Errorf("attach: stale mount %s: %w", mnt, err)
		}
	}
	return os.RemoveAll(dir)
}

func writeState(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(st.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(st.Dir, stateFile))
}

func readState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("attach: %s: %w", filepath.Join(dir, stateFile), err)
	}
	st.Dir = dir
	return &st, nil
}

// startServer starts the server for the state directory dir and waits
// until it has mounted the disk's file system.
func startServer(dir string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if err := os.Mkdir(filepath.Join(dir, mntDir), 0o700); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer pr.Close()
	cmd := exec.Command(exe)
	cmd.Args = []string{"vhd-attach-server", dir}
	cmd.Env = append(os.Environ(), ServeEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw} // fd 3: readiness
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return 0, fmt.Errorf("attach: start server: %w", err)
	}
	// Reap the server if it exits while this process lives; it is not
	// this process's business otherwise.
	go cmd.Wait() //nolint:errcheck // the exit file reports the outcome

	msg := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		msg <- strings.TrimSpace(line)
	}()
	select {
	case m := <-msg:
		if m == "ok" {
			return cmd.Process.Pid, nil
		}
		if m == "" {
			m = "server exited; see " + filepath.Join(dir, logFile)
		}
		cmd.Process.Kill() //nolint:errcheck // already failed
		return 0, fmt.Errorf("attach: %s", m)
	case <-time.After(readyTimeout):
		cmd.Process.Kill() //nolint:errcheck // timed out
		return 0, fmt.Errorf("attach: server did not mount within %v", readyTimeout)
	}
}

// stopServer unmounts the server's file system and waits for it to close
// the disk and exit; it returns the error the server recorded.
func stopServer(st *State) error {
	mnt := filepath.Join(st.Dir, mntDir)
	if isMountPoint(mnt) {
		if err := unmount(mnt); err != nil {
			return fmt.Errorf("attach: unmount %s: %w", mnt, err)
		}
	}
	deadline := time.Now().Add(exitTimeout)
	for {
		b, err := os.ReadFile(filepath.Join(st.Dir, exitFile))
		if err == nil {
			// The disk is closed; let the process finish exiting so
			// that nothing of the attach remains.
			for st.PID > 0 && alive(st.PID) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if s := strings.TrimSpace(string(b)); s != "ok" {
				return fmt.Errorf("attach: server: %s", s)
			}
			return nil
		}
		if st.PID > 0 && !alive(st.PID) {
			if _, err := os.Stat(filepath.Join(st.Dir, exitFile)); err == nil {
				continue
			}
			return fmt.Errorf("attach: server %d exited without closing the disk; see %s",
				st.PID, filepath.Join(st.Dir, logFile))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("attach: server %d did not exit within %v", st.PID, exitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state letter follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// unmount unmounts the FUSE file system at mnt, retrying while the
// kernel finishes releasing the loop device's hold on it.
func unmount(mnt string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Unmount(mnt, 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fm, lerr := exec.LookPath("fusermount3"); lerr == nil {
		if out, ferr := exec.Command(fm, "-u", mnt).CombinedOutput(); ferr == nil {
			return nil
		} else {
			return fmt.Errorf("%w; fusermount3: %v: %s", err, ferr, strings.TrimSpace(string(out)))
		}
	}
	return err
}

// isMountPoint reports whether dir is a mount point.
func isMountPoint(dir string) bool {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes of mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Find returns the state of the attach of target, a disk's path or a
// loop device. It fails with an error wrapping [fs.ErrNotExist] when
// target is not attached.
func Find(target string) (*State, error) {
	if strings.HasPrefix(target, "/dev/") {
		return findDevice(target)
	}
	path, err := canonical(target)
	if err != nil {
		return nil, err
	}
	dir := stateDir(path)
	if st, err := readState(dir); err == nil && st.Path == path && st.live() {
		return st, nil
	}
	// An attach made without a state directory (losetup, or a lost
	// /run): a loop device directly on the file.
	if devs := loopsBacking(path); len(devs) > 0 {
		return &State{Path: path, Device: devs[0]}, nil
	}
	return nil, fmt.Errorf("%s is not attached: %w", target, fs.ErrNotExist)
}

func findDevice(dev string) (*State, error) {
	if d, err := filepath.EvalSymlinks(dev); err == nil {
		dev = d
	}
	dirs, _ := filepath.Glob(filepath.Join(runDir(), "*", stateFile))
	for _, f := range dirs {
		st, err := readState(filepath.Dir(f))
		if err == nil && st.Device == dev && st.live() {
			return st, nil
		}
	}
	if b := backingFile(dev); b != "" {
		return &State{Path: b, Device: dev}, nil
	}
	return nil, fmt.Errorf("%s is not attached: %w", dev, fs.ErrNotExist)
}

// Detach detaches target, a disk's path or its loop device. It fails
// with an error wrapping [unix.EBUSY] while the device or one of its
// partitions is mounted, and returns only after the disk has been closed.
func Detach(target string) error {
	st, err := Find(target)
	if err != nil {
		return err
	}
	if mp, err := mountedFrom(st.Device); err != nil {
		return err
	} else if mp != "" {
		return fmt.Errorf("attach: %s is mounted at %s: %w", st.Device, mp, unix.EBUSY)
	}
	if err := loopDetach(st.Device); err != nil {
		return err
	}
	if st.Dir == "" {
		return nil
	}
	if st.Served {
		if err := stopServer(st); err != nil {
			// Keep the directory and the server's log for the user;
			// the next attach of the disk cleans it up.
			return err
		}
	}
	return os.RemoveAll(st.Dir)
}

// Serve runs the server for the state directory dir: it opens the disk,
// mounts its raw view at dir/mnt, reports readiness on file descriptor 3
// and returns after the file system has been unmounted and the disk
// closed. The outcome is also written to dir/exit for [Detach].
func Serve(dir string, open Opener) error {
	ready := os.NewFile(3, "ready")
	err := serve(dir, open, ready)
	res := "ok"
	if err != nil {
		res = err.Error()
	}
	// Written under a temporary name and renamed, so that [Detach]
	// never reads it half-written.
	tmp := filepath.Join(dir, exitFile+".tmp")
	if os.WriteFile(tmp, []byte(res+"\n"), 0o600) == nil {
		os.Rename(tmp, filepath.Join(dir, exitFile)) //nolint:errcheck // best effort
	}
	return err
}

func serve(dir string, open Opener, ready *os.File) error {
	st, err := readState(dir)
	if err != nil {
		fmt.Fprintf(ready, "%v\n", err)
		return err
	}
	img, err := open(st.Path, st.ReadOnly)
	if err != nil {
		fmt.Fprintf(ready, "open %s: %v\n", st.Path, err)
		return err
	}
	srv, err := fusemount.Mount(filepath.Join(dir, mntDir), img, &fusemount.Options{
		ReadOnly: st.ReadOnly,
		FsName:   "vhd:" + st.Path,
	})
	if err != nil {
		img.Close()
		fmt.Fprintf(ready, "%v\n", err)
		return err
	}
	// Terminal signals must not stop the server: the disk stays attached
	// until Detach. SIGTERM asks for an unmount, which succeeds only
	// when no loop device holds the file.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		for range term {
			srv.Unmount() //nolint:errcheck // refused while in use
		}
	}()
	fmt.Fprintln(ready, "ok")
	ready.Close()
	srv.Wait()
	signal.Stop(term)
	if err := img.Close(); err != nil {
		return fmt.Errorf("close %s: %w", st.Path, err)
	}
	return nil
}
