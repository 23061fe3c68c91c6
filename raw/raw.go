// Package raw treats a plain image file as a disk format: the virtual
// disk is the file, byte for byte, with no header or footer.
//
// Raw images have no metadata, so there is nothing to check, no
// identifier and no parent. The allocation map ([Disk.Map]) reports the
// file system's holes as unallocated where the operating system can tell
// them apart (SEEK_DATA and SEEK_HOLE on Linux); elsewhere the whole
// image is reported as data. [Create] makes a sparse file.
package raw

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/Microsoft/go-winio/pkg/guid"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// SectorSize is the sector size reported for raw images, which do not
// record one.
const SectorSize = 512

// Disk is an open raw image. It implements [vdisk.Image].
type Disk struct {
	f        vdisk.File
	path     string
	size     int64
	readOnly bool
	closed   atomic.Bool
}

// Open opens the raw image at path.
func Open(path string, opts *vdisk.OpenOptions) (*Disk, error) {
	return vdisk.OpenPath(path, opts, OpenFile)
}

// OpenFile opens the raw image held by f; path is reported by
// [Disk.Info] and may be empty. The disk takes ownership of f on
// success.
func OpenFile(f vdisk.File, path string, opts *vdisk.OpenOptions) (*Disk, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("raw: size of %s: %w", path, err)
	}
	return &Disk{
		f:        f,
		path:     path,
		size:     size,
		readOnly: opts != nil && opts.ReadOnly,
	}, nil
}

// Create creates a raw image of opts.Size bytes at path, which must not
// exist. The file is sparse: no data block is written. If creation
// fails the file is removed again.
func Create(path string, opts *vdisk.CreateOptions) (*Disk, error) {
	return vdisk.CreatePath(path, opts, CreateFile)
}

// CreateFile makes f a raw image of opts.Size bytes that reads as
// zeros, by truncating it to zero (unless empty) and then extending it. A raw image
// has no type, block size, identifier or parent: options asking for a
// differencing image are unsupported, and a block size, an identifier or
// a sector size other than 512 are invalid.
func CreateFile(f vdisk.File, path string, opts *vdisk.CreateOptions) (*Disk, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	// Truncating to zero only when needed matters: ext4 flushes a file
	// on close that was truncated to zero (auto_da_alloc), which costs
	// a conversion into a fresh file more than the copy itself.
	cur, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("raw: create %s: %w", path, err)
	}
	if cur != 0 {
		if err := f.Truncate(0); err != nil {
			return nil, fmt.Errorf("raw: create %s: %w", path, err)
		}
	}
	if err := f.Truncate(opts.Size); err != nil {
		return nil, fmt.Errorf("raw: create %s: %w", path, err)
	}
	return &Disk{f: f, path: path, size: opts.Size}, nil
}

func validate(o *vdisk.CreateOptions) error {
	switch {
	case o == nil:
		return fmt.Errorf("raw: %w: no create options", vdisk.ErrInvalidArgument)
	case o.Type == vdisk.TypeDifferencing || o.Parent != "":
		return vdisk.Unsupportedf("raw: differencing images")
	case o.Type != vdisk.TypeUnknown && o.Type != vdisk.TypeFixed &&
		o.Type != vdisk.TypeDynamic:
		return fmt.Errorf("raw: %w: type %v", vdisk.ErrInvalidArgument, o.Type)
	case o.Size < 0:
		return fmt.Errorf("raw: %w: negative size %d", vdisk.ErrInvalidArgument, o.Size)
	case o.BlockSize != 0:
		return fmt.Errorf("raw: %w: raw images have no block size", vdisk.ErrInvalidArgument)
	case o.LogicalSectorSize != 0 && o.LogicalSectorSize != SectorSize,
		o.PhysicalSectorSize != 0 && o.PhysicalSectorSize != SectorSize:
		return fmt.Errorf("raw: %w: raw images record no sector size (only 512 is accepted)",
			vdisk.ErrInvalidArgument)
	case o.ID != (guid.GUID{}):
		return fmt.Errorf("raw: %w: raw images have no identifier", vdisk.ErrInvalidArgument)
	}
	return nil
}

// Detect reports whether content can be read as a raw image: always,
// since any bytes are a raw image. Callers try the other formats first.
func Detect(r io.ReaderAt, size int64) bool { return true }

// Check checks a raw image. A raw image has no structure that can break
// a rule, so every finding is a warning: a size that is not a whole
// number of 512-byte sectors, or VHD or VHDX signatures in their places
// (a VHD or VHDX whose own signature is damaged reads as raw). The
// error reports that f could not be measured.
func Check(f vdisk.File, path string, opts *vdisk.OpenOptions) ([]vdisk.Finding, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("raw: check %s: %w", path, err)
	}
	var fs []vdisk.Finding
	warn := func(off int64, rule, format string, args ...any) {
		fs = append(fs, vdisk.Finding{Severity: vdisk.SeverityWarning,
			Structure: "file", Offset: off, Rule: rule,
			Message: fmt.Sprintf(format, args...)})
	}
	if size%512 != 0 {
		warn(-1, "raw.size.sector", "size %d is not a whole number of "+
			"512-byte sectors: not a disk image?", size)
	}
	// Any file is a raw image, so a VHD or VHDX whose signature is
	// damaged is one too. Say so when the structures of those formats
	// are still in their places.
	at := func(off int64, sig string) bool {
		if off < 0 || off+int64(len(sig)) > size {
			return false
		}
		b := make([]byte, len(sig))
		_, err := f.ReadAt(b, off)
		return err == nil && string(b) == sig
	}
	for _, s := range []struct {
		off int64
		sig string
	}{{64 << 10, "head"}, {128 << 10, "head"}, {192 << 10, "regi"}, {256 << 10, "regi"}} {
		if at(s.off, s.sig) {
			warn(s.off, "raw.vhdx-signature", "VHDX %q signature here, but "+
				"no VHDX file identifier at 0: a damaged VHDX read as raw?", s.sig)
			break
		}
	}
	for _, off := range []int64{size - 512, size - 511, 0} {
		if at(off, "conectix") {
			warn(off, "raw.vhd-footer", "VHD footer cookie here, but no "+
				"valid VHD footer: a damaged VHD read as raw?")
			break
		}
	}
	if at(512, "cxsparse") {
		warn(512, "raw.vhd-header", "VHD dynamic header cookie here: a "+
			"damaged VHD read as raw?")
	}
	return fs, nil
}

// ReadAt reads virtual content, which is the file's content. Reading at
// or past the end returns io.EOF.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, vdisk.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("raw: read at %d: %w", off, vdisk.ErrOutOfRange)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	short := false
	if rem := d.size - off; int64(len(p)) > rem {
		p, short = p[:rem], true
	}
	n, err := d.f.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	if err == io.EOF && n < len(p) {
		// The file shrank under us.
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// WriteAt writes virtual content. A write that does not fit within the
// size writes nothing and returns an error wrapping
// [vdisk.ErrOutOfRange].
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	switch {
	case d.closed.Load():
		return 0, vdisk.ErrClosed
	case d.readOnly:
		return 0, vdisk.ErrReadOnly
	case off < 0 || off > d.size || int64(len(p)) > d.size-off:
		return 0, fmt.Errorf("raw: write of %d bytes at %d beyond size %d: %w",
			len(p), off, d.size, vdisk.ErrOutOfRange)
	}
	return d.f.WriteAt(p, off)
}

// Size returns the virtual size, which is the file size at open.
func (d *Disk) Size() int64 { return d.size }

// Sync makes written data durable.
func (d *Disk) Sync() error {
	if d.closed.Load() {
		return vdisk.ErrClosed
	}
	if d.readOnly {
		return nil
	}
	return d.f.Sync()
}

// Close syncs a read-write image and closes the file.
func (d *Disk) Close() error {
	if d.closed.Swap(true) {
		return vdisk.ErrClosed
	}
	var err error
	if !d.readOnly {
		err = d.f.Sync()
	}
	return errors.Join(err, d.f.Close())
}

// Map describes [off, off+length): file system holes are
// [vdisk.Unallocated] where the platform reports them, everything else
// is [vdisk.Data] at the same file offset. Ranges are clipped to the
// size.
func (d *Disk) Map(off, length int64) ([]vdisk.Extent, error) {
	if d.closed.Load() {
		return nil, vdisk.ErrClosed
	}
	if off < 0 || length < 0 || off > d.size || length > d.size-off {
		return nil, fmt.Errorf("raw: map [%d, +%d) beyond size %d: %w",
			off, length, d.size, vdisk.ErrOutOfRange)
	}
	if length == 0 {
		return nil, nil
	}
	ext, err := mapHoles(d.f, off, off+length)
	if err != nil {
		return nil, fmt.Errorf("raw: map %s: %w", d.path, err)
	}
	if ext == nil {
		ext = []vdisk.Extent{dataExtent(off, off+length)}
	}
	return ext, nil
}

func dataExtent(start, end int64) vdisk.Extent {
	return vdisk.Extent{Offset: start, Length: end - start,
		State: vdisk.Data, FileOffset: start}
}

func holeExtent(start, end int64) vdisk.Extent {
	return vdisk.Extent{Offset: start, Length: end - start,
		State: vdisk.Unallocated, FileOffset: -1}
}

// Info describes the image. AllocatedBytes is the size, as for any
// fully provisioned disk; holes show in [Disk.Map].
func (d *Disk) Info() vdisk.Info {
	return vdisk.Info{
		Path:               d.path,
		Format:             vdisk.FormatRaw,
		Type:               vdisk.TypeFixed,
		VirtualSize:        d.size,
		FileSize:           d.size,
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		AllocatedBytes:     d.size,
		ReadOnly:           d.readOnly,
	}
}
