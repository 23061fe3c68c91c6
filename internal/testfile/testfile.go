// Package testfile provides in-memory [vdisk.File]s for tests: one that
// loses unsynced writes on a simulated crash, and one that fails the n-th
// call.
package testfile

import (
	"errors"
	"io"
	"sync"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Mem is an in-memory file. Writes go to the volatile state; Sync copies
// it to the durable state; Crash returns a file holding only the durable
// state, as a machine that lost power would.
type Mem struct {
	mu       sync.Mutex
	data     []byte // what reads see
	durable  []byte // what survives Crash
	closed   bool
	Syncs    int // number of Sync calls
	Writes   int // number of WriteAt calls
	ReadOnly bool
}

// NewMem returns an empty file.
func NewMem() *Mem { return &Mem{} }

// FromBytes returns a file holding a durable copy of b.
func FromBytes(b []byte) *Mem {
	return &Mem{data: append([]byte(nil), b...), durable: append([]byte(nil), b...)}
}

// ReadAt implements io.ReaderAt.
func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 {
		return 0, errors.New("testfile: negative offset")
	}
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements io.WriterAt.
func (m *Mem) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ReadOnly {
		return 0, errors.New("testfile: write to read-only file")
	}
	if off < 0 {
		return 0, errors.New("testfile: negative offset")
	}
	m.Writes++
	if end := off + int64(len(p)); end > int64(len(m.data)) {
		m.data = append(m.data, make([]byte, end-int64(len(m.data)))...)
	}
	copy(m.data[off:], p)
	return len(p), nil
}

// Sync makes every write so far durable.
func (m *Mem) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Syncs++
	m.durable = append(m.durable[:0], m.data...)
	return nil
}

// Truncate sets the size.
func (m *Mem) Truncate(size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ReadOnly {
		return errors.New("testfile: truncate of read-only file")
	}
	if size < int64(len(m.data)) {
		m.data = m.data[:size]
	} else {
		m.data = append(m.data, make([]byte, size-int64(len(m.data)))...)
	}
	return nil
}

// Size returns the current size.
func (m *Mem) Size() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.data)), nil
}

// Close marks the file closed; it can still be inspected.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Bytes returns a copy of the current content.
func (m *Mem) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data...)
}

// Crash returns a new file holding only what was synced.
func (m *Mem) Crash() *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return FromBytes(m.durable)
}

// ErrInjected is returned by a [Faulty] file's failing call.
var ErrInjected = errors.New("testfile: injected fault")

// Faulty wraps a file and fails every mutating call (WriteAt, Sync,
// Truncate) from the FailAt-th on (counting from 1); 0 never fails.
type Faulty struct {
	vdisk.File
	FailAt int
	mu     sync.Mutex
	calls  int
}

func (f *Faulty) step() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.FailAt > 0 && f.calls >= f.FailAt {
		return ErrInjected
	}
	return nil
}

// Calls returns the number of mutating calls seen.
func (f *Faulty) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// WriteAt fails once the fault point is reached.
func (f *Faulty) WriteAt(p []byte, off int64) (int, error) {
	if err := f.step(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

// Sync fails once the fault point is reached.
func (f *Faulty) Sync() error {
	if err := f.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

// Truncate fails once the fault point is reached.
func (f *Faulty) Truncate(size int64) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
