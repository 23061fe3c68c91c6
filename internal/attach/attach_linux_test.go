package attach

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vhdkit/vhd/internal/testutil"
)

// TestMain lets this test binary act as the server when re-executed by
// Attach, as package vhd's init does for real programs.
func TestMain(m *testing.M) {
	if dir := os.Getenv(ServeEnv); dir != "" {
		if err := Serve(dir, openTestImage); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testImage serves a plain file with its first 4 KiB hidden, so that a
// served attach shows content a direct one would not.
type testImage struct {
	mu sync.Mutex
	f  *os.File
	n  int64
}

const hidden = 4096

var errShort = errors.New("test image shorter than its hidden prefix")

func openTestImage(path string, ro bool) (Image, error) {
	flag := os.O_RDWR
	if ro {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() < hidden {
		f.Close()
		return nil, errShort
	}
	return &testImage{f: f, n: fi.Size() - hidden}, nil
}

func (t *testImage) ReadAt(p []byte, off int64) (int, error) { return t.f.ReadAt(p, off+hidden) }
func (t *testImage) WriteAt(p []byte, off int64) (int, error) {
	return t.f.WriteAt(p, off+hidden)
}
func (t *testImage) Size() int64  { return t.n }
func (t *testImage) Sync() error  { return t.f.Sync() }
func (t *testImage) Close() error { return t.f.Close() }

func needRoot(t *testing.T, served bool) {
	t.Helper()
	if err := canAttach(served); err != nil {
		testutil.Missing(t, "%v", err)
	}
	t.Setenv("VHD_RUN_DIR", t.TempDir())
}

// image makes a file of n bytes whose content is its offsets' low bytes.
func image(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i / 512)
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func detachCleanup(t *testing.T, dev string) {
	t.Cleanup(func() {
		if backingFile(dev) != "" {
			if err := Detach(dev); err != nil {
				t.Errorf("cleanup detach %s: %v", dev, err)
			}
		}
	})
}

func readDev(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("read %s: %v", dev, err)
	}
	return b
}

func devSize(t *testing.T, dev string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "size"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	fmt.Sscan(string(b), &n)
	return n * 512
}

func TestDirect(t *testing.T) {
	needRoot(t, false)
	p := image(t, 1<<20)
	// A 512-byte trailer (like a VHD footer) stays hidden.
	dev, err := Attach(Request{Path: p, Direct: true, Size: 1<<20 - 512})
	if err != nil {
		t.Fatal(err)
	}
	detachCleanup(t, dev)
	if got := devSize(t, dev); got != 1<<20-512 {
		t.Errorf("device size %d, want %d", got, 1<<20-512)
	}
	if b := readDev(t, dev, 1024, 1); b[0] != 2 {
		t.Errorf("byte at 1024 = %d, want 2", b[0])
	}
	if _, err := Attach(Request{Path: p, Direct: true, Size: 1 << 20}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second attach: %v, want ErrExist", err)
	}
	st, err := Find(p)
	if err != nil || st.Device != dev {
		t.Fatalf("Find(path) = %+v, %v", st, err)
	}
	if err := Detach(p); err != nil {
		t.Fatal(err)
	}
	if backingFile(dev) != "" {
		t.Errorf("%s still attached", dev)
	}
	if _, err := Find(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Find after detach: %v", err)
	}
}

func TestServed(t *testing.T) {
	needRoot(t, true)
	p := image(t, 1<<20)
	dev, err := Attach(Request{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	detachCleanup(t, dev)
	if got := devSize(t, dev); got != 1<<20-hidden {
		t.Errorf("device size %d, want %d", got, 1<<20-hidden)
	}
	// Offset 0 of the device is offset 4096 of the file.
	if b := readDev(t, dev, 0, 1); b[0] != hidden/512 {
		t.Errorf("first byte %d, want %d", b[0], hidden/512)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xAB}, 4096), 8192); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := Find(dev)
	if err != nil || st.Path != p || !st.Served || st.PID == 0 {
		t.Fatalf("Find(dev) = %+v, %v", st, err)
	}
	if err := Detach(dev); err != nil {
		t.Fatal(err)
	}
	if alive(st.PID) {
		t.Errorf("server %d still running after detach", st.PID)
	}
	if isMountPoint(filepath.Join(st.Dir, mntDir)) {
		t.Errorf("FUSE still mounted")
	}
	b, _ := os.ReadFile(p)
	if !bytes.Equal(b[hidden+8192:hidden+8192+4096], bytes.Repeat([]byte{0xAB}, 4096)) {
		t.Error("write through the device did not reach the image")
	}
}

func TestServedReadOnly(t *testing.T) {
	needRoot(t, true)
	p := image(t, 256<<10)
	dev, err := Attach(Request{Path: p, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	detachCleanup(t, dev)
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt([]byte{1}, 0)
		f.Close()
	}
	if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		t.Errorf("write to read-only device: %v, want EROFS/EPERM/EACCES", err)
	}
	if err := Detach(p); err != nil {
		t.Fatal(err)
	}
}

func TestServerFailsToOpen(t *testing.T) {
	needRoot(t, true)
	p := filepath.Join(t.TempDir(), "short.img")
	if err := os.WriteFile(p, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Attach(Request{Path: p})
	if err == nil || !strings.Contains(err.Error(), errShort.Error()) {
		t.Fatalf("attach of a file the server cannot open: %v", err)
	}
	if _, err := os.Stat(stateDir(p)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state directory left behind: %v", err)
	}
}

// TestNotRoot: without root, attaching fails with ErrUnsupported and
// leaves nothing behind.
func TestNotRoot(t *testing.T) {
	t.Setenv("VHD_RUN_DIR", t.TempDir())
	old := geteuid
	geteuid = func() int { return 1000 }
	defer func() { geteuid = old }()
	p := image(t, 64<<10)
	for _, direct := range []bool{true, false} {
		_, err := Attach(Request{Path: p, Direct: direct, Size: 64 << 10})
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("direct=%v: %v, want ErrUnsupported", direct, err)
		}
	}
	if ents, _ := os.ReadDir(runDir()); len(ents) != 0 {
		t.Errorf("state left in %s: %v", runDir(), ents)
	}
}

// TestServerKilled: when the server dies, Detach still frees the loop
// device and the mount, reports that the disk was not closed, keeps the
// log, and the disk can be attached again.
func TestServerKilled(t *testing.T) {
	needRoot(t, true)
	p := image(t, 256<<10)
	dev, err := Attach(Request{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	detachCleanup(t, dev)
	st, err := Find(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(st.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && alive(st.PID); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if err := Detach(p); err == nil || !strings.Contains(err.Error(), "without closing") {
		t.Errorf("detach after the server died: %v", err)
	}
	if backingFile(dev) != "" || isMountPoint(filepath.Join(st.Dir, mntDir)) {
		t.Error("loop device or mount left after detach")
	}
	if _, err := os.Stat(filepath.Join(st.Dir, logFile)); err != nil {
		t.Errorf("server log not kept: %v", err)
	}
	dev, err = Attach(Request{Path: p})
	if err != nil {
		t.Fatalf("attach after a dead server: %v", err)
	}
	detachCleanup(t, dev)
	if err := Detach(dev); err != nil {
		t.Fatal(err)
	}
}
