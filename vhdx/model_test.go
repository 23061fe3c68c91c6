package vhdx

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
)

// model is the expected content of a disk: 4 KiB pages that were
// written; everything else is zero.
type model struct {
	size  int64
	pages map[int64][]byte
}

func newModel(size int64) *model { return &model{size: size, pages: map[int64][]byte{}} }

// clone returns an independent copy.
func (m *model) clone() *model {
	c := newModel(m.size)
	for k, v := range m.pages {
		c.pages[k] = append([]byte(nil), v...)
	}
	return c
}

// write records p at off.
func (m *model) write(p []byte, off int64) {
	for len(p) > 0 {
		pg := off &^ 4095
		b, ok := m.pages[pg]
		if !ok {
			b = make([]byte, 4096)
			m.pages[pg] = b
		}
		n := copy(b[off-pg:], p)
		p, off = p[n:], off+int64(n)
	}
}

// read fills p from off.
func (m *model) read(p []byte, off int64) {
	for len(p) > 0 {
		pg := off &^ 4095
		n := min(int64(len(p)), pg+4096-off)
		if b, ok := m.pages[pg]; ok {
			copy(p[:n], b[off-pg:])
		} else {
			clear(p[:n])
		}
		p, off = p[n:], off+n
	}
}

// sha256 hashes the whole content.
func (m *model) sha256() string {
	h := sha256.New()
	buf := make([]byte, 4*miB)
	for off := int64(0); off < m.size; off += int64(len(buf)) {
		n := min(int64(len(buf)), m.size-off)
		m.read(buf[:n], off)
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compareDisk reads d fully and compares it with m, naming the first
// difference.
func (m *model) compareDisk(t testing.TB, d interface {
	ReadAt([]byte, int64) (int, error)
}) {
	t.Helper()
	got := make([]byte, 4*miB)
	want := make([]byte, 4*miB)
	for off := int64(0); off < m.size; off += int64(len(got)) {
		n := min(int64(len(got)), m.size-off)
		if _, err := d.ReadAt(got[:n], off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		m.read(want[:n], off)
		if !bytes.Equal(got[:n], want[:n]) {
			for i := range n {
				if got[i] != want[i] {
					t.Fatalf("content differs at %d: got 0x%02x, want 0x%02x", off+i, got[i], want[i])
				}
			}
		}
	}
}

// scatteredWrites returns n writes at scattered offsets of a disk of
// size bytes, some unaligned, with lengths up to maxLen.
func scatteredWrites(rng *rand.Rand, size int64, n int, maxLen int64) []struct {
	off int64
	p   []byte
} {
	out := make([]struct {
		off int64
		p   []byte
	}, n)
	for i := range out {
		l := 1 + rng.Int64N(maxLen)
		if i%3 == 0 {
			l = (l + 511) &^ 511
		}
		off := rng.Int64N(size - l + 1)
		if i%2 == 0 {
			off &^= 511
		}
		if i == n-1 {
			off = size - l // the very end of the disk
		}
		p := make([]byte, l)
		for j := range p {
			p[j] = byte(i*37 + j%251 + 1)
		}
		out[i].off, out[i].p = off, p
	}
	return out
}

// runSHA runs a command and returns the sha256 of its stdout, without
// holding it in memory.
func runSHA(t testing.TB, name string, args ...string) string {
	t.Helper()
	testutil.Tool(t, name)
	h := sha256.New()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = h, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pyvhdiPython finds a python3 that has libvhdi's bindings.
func pyvhdiPython(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import pyvhdi").Run() == nil {
			return p
		}
	}
	testutil.Missing(t, "python3 with pyvhdi not installed")
	return ""
}

// pyvhdiSHA reads the disk with libvhdi (pyvhdi) and returns the media
// size and the sha256 of the content.
func pyvhdiSHA(t testing.TB, path string) (int64, string) {
	t.Helper()
	return pyvhdiChainSHA(t, []string{path})
}

// qemuRawSHA converts the image to raw with qemu-img and hashes it.
func qemuRawSHA(t testing.TB, path string) string {
	t.Helper()
	raw := path + ".raw"
	testutil.Run(t, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, raw)
	defer os.Remove(raw)
	return fileSHAStream(t, raw)
}

// fileSHAStream hashes a file by streaming it.
func fileSHAStream(t testing.TB, path string) string {
	t.Helper()
	return runSHA(t, "cat", path)
}
