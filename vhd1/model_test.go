package vhd1

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
)

// model is what a disk should hold: zeros plus the writes made, later
// writes winning. It stays small for huge sparse disks.
type model struct {
	size   int64
	writes []modelWrite
}

type modelWrite struct {
	off  int64
	data []byte
}

func (m *model) write(off int64, b []byte) {
	m.writes = append(m.writes, modelWrite{off, append([]byte(nil), b...)})
}

// fill sets buf to the content at off.
func (m *model) fill(buf []byte, off int64) {
	clear(buf)
	end := off + int64(len(buf))
	for _, w := range m.writes {
		wend := w.off + int64(len(w.data))
		if wend <= off || w.off >= end {
			continue
		}
		lo, hi := max(off, w.off), min(end, wend)
		copy(buf[lo-off:hi-off], w.data[lo-w.off:hi-w.off])
	}
}

// sha returns the sha256 of the whole content.
func (m *model) sha() string {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < m.size; off += int64(len(buf)) {
		n := min(int64(len(buf)), m.size-off)
		m.fill(buf[:n], off)
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compare reads r to its end and fails at the first byte that differs
// from the model, or when the length differs.
func (m *model) compare(t *testing.T, what string, r io.Reader) {
	t.Helper()
	got := make([]byte, 1<<20)
	want := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			if off+int64(n) > m.size {
				t.Fatalf("%s: longer than %d bytes", what, m.size)
			}
			m.fill(want[:n], off)
			if !bytes.Equal(got[:n], want[:n]) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				t.Fatalf("%s: byte %d is 0x%02x, want 0x%02x", what,
					off+int64(i), got[i], want[i])
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if off != m.size {
		t.Fatalf("%s: %d bytes, want %d", what, off, m.size)
	}
}

// compareAt checks r against the model with ReadAt calls of varied
// sizes and alignments.
func (m *model) compareAt(t *testing.T, what string, r io.ReaderAt) {
	t.Helper()
	m.compare(t, what, io.NewSectionReader(r, 0, m.size))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		off := rng.Int64N(m.size)
		n := min(rng.Int64N(300000)+1, m.size-off)
		got := make([]byte, n)
		want := make([]byte, n)
		if k, err := r.ReadAt(got, off); k != len(got) || err != nil && err != io.EOF {
			t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", what, off, n, k, err)
		}
		m.fill(want, off)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: ReadAt(%d, %d) differs from the model", what, off, n)
		}
	}
}

// writeRaw writes the model as a sparse raw file.
func (m *model) writeRaw(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(m.size); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0)
	for _, w := range m.writes {
		buf = append(buf[:0], make([]byte, len(w.data))...)
		m.fill(buf, w.off)
		if _, err := f.WriteAt(buf, w.off); err != nil {
			t.Fatal(err)
		}
	}
}

// scatteredWrites returns writes spread over a disk of size bytes:
// unaligned starts and lengths, block boundaries, the first and the
// last byte.
func scatteredWrites(size int64, seed uint64) []modelWrite {
	rng := rand.New(rand.NewPCG(seed, 7))
	spots := []struct{ off, n int64 }{
		{0, 4096},
		{511, 1000},
		{size/3 | 1, 70001},
		{2<<20 - 5, 10},
		{size/2 - 100, 300 << 10},
		{size - 700, 700},
		{size - 1, 1},
	}
	var ws []modelWrite
	for _, s := range spots {
		if s.off < 0 || s.off >= size {
			continue
		}
		n := min(s.n, size-s.off)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32()) | 1 // never zero: a lost write shows
		}
		ws = append(ws, modelWrite{s.off, b})
	}
	return ws
}

func sizeName(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}
