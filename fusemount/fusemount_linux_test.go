package fusemount

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// memImage is an in-memory Image that counts syncs.
type memImage struct {
	mu    sync.Mutex
	data  []byte
	syncs int
}

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.NewReader(m.data).ReadAt(p, off)
}

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+int64(len(p)) > int64(len(m.data)) {
		return 0, vdisk.ErrOutOfRange
	}
	return copy(m.data[off:], p), nil
}

// bytes returns a copy of [off, off+n).
func (m *memImage) bytes(off, n int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.data[off : off+n])
}

func (m *memImage) syncCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

func (m *memImage) Size() int64 { return int64(len(m.data)) }

func (m *memImage) Sync() error {
	m.mu.Lock()
	m.syncs++
	m.mu.Unlock()
	return nil
}

// needFUSE skips (or fails under CI) when FUSE mounts cannot be made.
func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Missing(t, "mounting FUSE here needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testutil.Missing(t, "no /dev/fuse: %v", err)
	}
}

func mount(t *testing.T, img Image, o *Options) *Server {
	t.Helper()
	needFUSE(t)
	dir := t.TempDir()
	s, err := Mount(dir, img, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		s.Wait()
	})
	return s
}

func TestReadWrite(t *testing.T) {
	img := &memImage{data: make([]byte, 1<<20)}
	copy(img.data[4096:], "hello")
	s := mount(t, img, nil)

	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 1<<20 || !fi.Mode().IsRegular() {
		t.Fatalf("stat: size %d mode %v", fi.Size(), fi.Mode())
	}
	f, err := os.OpenFile(s.Path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 4096); err != nil || string(buf) != "hello" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	if _, err := f.WriteAt([]byte("world"), 1<<20-5); err != nil {
		t.Fatal(err)
	}
	if got := img.bytes(1<<20-5, 5); got != "world" {
		t.Errorf("image holds %q after write", got)
	}
	// Past the end: the file cannot grow.
	if _, err := f.WriteAt([]byte("x"), 1<<20); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write past end: %v, want ENOSPC", err)
	}
	if err := f.Truncate(10); !errors.Is(err, syscall.EPERM) {
		t.Errorf("truncate: %v, want EPERM", err)
	}
	before := img.syncCount()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if img.syncCount() == before {
		t.Error("fsync did not reach the image's Sync")
	}
	// Reads at the end return EOF like a file.
	n, err := f.ReadAt(make([]byte, 10), 1<<20-4)
	if n != 4 {
		t.Errorf("read at end: %d bytes, %v", n, err)
	}
}

func TestReadOnly(t *testing.T) {
	img := &memImage{data: make([]byte, 64<<10)}
	s := mount(t, img, &Options{ReadOnly: true})
	if _, err := os.OpenFile(s.Path(), os.O_RDWR, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("open for writing: %v, want EROFS", err)
	}
	f, err := os.Open(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(make([]byte, 512), 0); err != nil {
		t.Errorf("read: %v", err)
	}
}
