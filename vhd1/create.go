package vhd1

import (
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// The creator fields we write (FORMATS.md 2.3).
//
// Creator Application "win " is chosen so that every reader sees the
// exact size we create. Windows, Hyper-V, VirtualBox and libvhdi always
// take Current Size. qemu-img 7.2 takes the CHS geometry for "vpc ",
// "vs  ", "qemu" and every code it does not know, so a code of our own
// would make qemu show a disk cut down to the geometry (10 MiB becomes
// 10,479,616 bytes); "win " is on qemu's Current Size list. We write the
// Hyper-V semantics that code stands for: Current Size is the truth and
// the geometry is the spec's computation from it. The version is
// free-form; 10.0 matches the Windows 10 files in the corpus. Host OS
// "Wi2k" is what Azure expects.
var (
	creatorApp     = [4]byte{'w', 'i', 'n', ' '}
	creatorHostOS  = [4]byte{'W', 'i', '2', 'k'}
	creatorVersion = uint32(0x000A0000)
)

// maxFixedSize bounds the size of a fixed disk. The format has no limit
// for fixed disks (no BAT); Azure accepts up to 32 TiB.
const maxFixedSize = 1 << 50

// Create creates a new VHD at path (failing if it exists) and opens it
// read-write. On failure the file is removed again.
func Create(path string, opts *vdisk.CreateOptions) (*Disk, error) {
	return vdisk.CreatePath(path, opts, CreateFile)
}

// CreateFile writes a new VHD into the empty file f and opens it
// read-write. path is where f lives; a differencing disk records its
// parent relative to path's directory.
//
// The size must be a multiple of 512 and is stored exactly in Original
// Size and Current Size; dynamic and differencing disks are limited to
// 2040 GiB. A differencing disk takes its size from the parent.
func CreateFile(f vdisk.File, path string, opts *vdisk.CreateOptions) (*Disk, error) {
	c, err := newCreation(path, opts)
	if err != nil {
		return nil, err
	}
	if c.typ == DiskTypeFixed {
		err = c.writeFixed(f)
	} else {
		err = c.writeDynamic(f)
	}
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return OpenFile(f, path, &vdisk.OpenOptions{
		Parent: vdisk.ParentPolicy{Path: opts.Parent}})
}

// creation is a validated creation request.
type creation struct {
	typ       DiskType
	size      int64
	blockSize uint32
	id        [16]byte
	now       time.Time
	path      string

	parentID   [16]byte
	parentTime uint32
	parentPath string
}

func newCreation(path string, o *vdisk.CreateOptions) (*creation, error) {
	if o == nil {
		o = &vdisk.CreateOptions{}
	}
	c := &creation{size: o.Size, blockSize: o.BlockSize, now: time.Now(),
		path: path}
	switch o.Type {
	case vdisk.TypeFixed:
		c.typ = DiskTypeFixed
	case vdisk.TypeDynamic:
		c.typ = DiskTypeDynamic
	case vdisk.TypeDifferencing:
		c.typ = DiskTypeDifferencing
	case vdisk.TypeUnknown:
		c.typ = DiskTypeDynamic
		if o.Parent != "" {
			c.typ = DiskTypeDifferencing
		}
	default:
		return nil, invalid("disk type %v", o.Type)
	}
	if (o.Parent != "") != (c.typ == DiskTypeDifferencing) {
		return nil, invalid("a parent is given exactly for differencing disks")
	}
	if o.LogicalSectorSize != 0 && o.LogicalSectorSize != SectorSize ||
		o.PhysicalSectorSize != 0 && o.PhysicalSectorSize != SectorSize {
		return nil, invalid("VHD sectors are 512 bytes (logical %d, "+
			"physical %d asked; 0 means the default)",
			o.LogicalSectorSize, o.PhysicalSectorSize)
	}
	if c.blockSize == 0 {
		c.blockSize = DefaultBlockSize
	}
	if c.blockSize < SectorSize || bits.OnesCount32(c.blockSize) != 1 {
		return nil, invalid("block size %d is not a power of two >= 512",
			c.blockSize)
	}
	if o.ID != (guid.GUID{}) {
		c.id = o.ID.ToArray()
	} else {
		g, err := guid.NewV4()
		if err != nil {
			return nil, err
		}
		c.id = g.ToArray()
	}
	if c.typ == DiskTypeDifferencing {
		if err := c.readParent(o); err != nil {
			return nil, err
		}
	}
	limit := int64(MaxDynamicSize)
	if c.typ == DiskTypeFixed {
		limit = maxFixedSize
	}
	if c.size <= 0 || c.size%SectorSize != 0 || c.size > limit {
		return nil, invalid("size %d is not a multiple of 512 in "+
			"(0, %d] for a %v disk", c.size, limit, c.typ)
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("vhd: %s: %w", fmt.Sprintf(format, args...),
		vdisk.ErrInvalidArgument)
}

// readParent opens the parent to learn its Unique Id and size, and
// takes the Parent Time Stamp from its modification time, as blktap
// does (FORMATS.md 2.10).
func (c *creation) readParent(o *vdisk.CreateOptions) error {
	p, err := Open(o.Parent, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("vhd: parent: %w", err)
	}
	defer p.Close()
	if c.size == 0 {
		c.size = p.Size()
	} else if c.size != p.Size() {
		return invalid("size %d differs from the parent's %d", c.size,
			p.Size())
	}
	fi, err := os.Stat(o.Parent)
	if err != nil {
		return err
	}
	c.parentID = p.footer.UniqueID
	c.parentTime = TimeStamp(fi.ModTime())
	c.parentPath = o.Parent
	return nil
}

// footer returns the new disk's footer.
func (c *creation) footer(dataOffset uint64) *Footer {
	return &Footer{
		Cookie:         footerCookie,
		Features:       FeatureReserved,
		FormatVersion:  Version,
		DataOffset:     dataOffset,
		TimeStamp:      TimeStamp(c.now),
		CreatorApp:     creatorApp,
		CreatorVersion: creatorVersion,
		CreatorHostOS:  creatorHostOS,
		OriginalSize:   uint64(c.size),
		CurrentSize:    uint64(c.size),
		Geometry:       CHS(c.size),
		DiskType:       c.typ,
		UniqueID:       c.id,
	}
}

// writeFixed writes a fixed disk: zeros (sparse) and the footer.
func (c *creation) writeFixed(f vdisk.File) error {
	if err := f.Truncate(c.size); err != nil {
		return err
	}
	_, err := f.WriteAt(c.footer(0xFFFFFFFFFFFFFFFF).Encode(), c.size)
	return err
}

// writeDynamic writes the footer copy, the dynamic header, an empty BAT,
// the parent locators of a differencing disk, and the footer.
func (c *creation) writeDynamic(f vdisk.File) error {
	const headerOff, tableOff = FooterSize, FooterSize + HeaderSize
	bs := int64(c.blockSize)
	entries := (c.size + bs - 1) / bs
	h := &DynamicHeader{
		Cookie:          headerCookie,
		DataOffset:      0xFFFFFFFFFFFFFFFF,
		TableOffset:     tableOff,
		HeaderVersion:   Version,
		MaxTableEntries: uint32(entries),
		BlockSize:       c.blockSize,
	}
	end := tableOff + batBytes(h)
	var payloads [][]byte
	if c.typ == DiskTypeDifferencing {
		locs, data, err := c.locators(end)
		if err != nil {
			return err
		}
		copy(h.ParentLocators[:], locs)
		payloads = data
		for _, l := range locs {
			end += int64(l.PlatformDataSpace)
		}
		h.ParentUniqueID = c.parentID
		h.ParentTimeStamp = c.parentTime
		if err := h.setParentName(filepath.Base(c.parentPath)); err != nil {
			return invalid("%v", err)
		}
	}
	ft := c.footer(headerOff).Encode()
	if _, err := f.WriteAt(ft, 0); err != nil {
		return err
	}
	if _, err := f.WriteAt(h.Encode(), headerOff); err != nil {
		return err
	}
	if err := writeEmptyBAT(f, tableOff, batBytes(h)); err != nil {
		return err
	}
	for i, p := range payloads {
		if _, err := f.WriteAt(p, int64(h.ParentLocators[i].PlatformDataOffset)); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(ft, end); err != nil {
		return err
	}
	return f.Truncate(end + FooterSize)
}

// writeEmptyBAT fills n bytes at off with 0xFF (every entry unallocated,
// padding as qemu writes it) in bounded chunks.
func writeEmptyBAT(f vdisk.File, off, n int64) error {
	chunk := make([]byte, min(n, 1<<20))
	for k := range chunk {
		chunk[k] = 0xFF
	}
	for n > 0 {
		m := min(n, int64(len(chunk)))
		if _, err := f.WriteAt(chunk[:m], off); err != nil {
			return err
		}
		off, n = off+m, n-m
	}
	return nil
}

// locators returns a W2ru and a W2ku locator with their data, placed
// from off on, each with a Data Space in bytes that is a multiple of
// 512 (FORMATS.md 2.6).
func (c *creation) locators(off int64) ([]ParentLocator, [][]byte, error) {
	abs, err := filepath.Abs(c.parentPath)
	if err != nil {
		return nil, nil, err
	}
	childDir, err := filepath.Abs(filepath.Dir(c.path))
	if err != nil {
		return nil, nil, err
	}
	type locPath struct {
		code PlatformCode
		path string
	}
	var paths []locPath
	if rel, err := filepath.Rel(childDir, abs); err == nil {
		paths = append(paths, locPath{PlatformW2ru, `.\` + windowsPath(rel)})
	}
	paths = append(paths, locPath{PlatformW2ku, windowsPath(abs)})
	var locs []ParentLocator
	var data [][]byte
	for _, p := range paths {
		b := encodeUTF16LE(p.path)
		if len(b) > maxLocatorData {
			return nil, nil, invalid("parent path %q too long", p.path)
		}
		space := (int64(len(b)) + SectorSize - 1) / SectorSize * SectorSize
		locs = append(locs, ParentLocator{
			PlatformCode:       p.code,
			PlatformDataSpace:  uint32(space),
			PlatformDataLength: uint32(len(b)),
			PlatformDataOffset: uint64(off),
		})
		data = append(data, b)
		off += space
	}
	return locs, data, nil
}

// windowsPath writes a host path with backslashes, the W2ru and W2ku
// form. On Windows an absolute path stays itself ("C:\dir\parent.vhd").
func windowsPath(p string) string {
	return strings.ReplaceAll(filepath.ToSlash(p), "/", `\`)
}
