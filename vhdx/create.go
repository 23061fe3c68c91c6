package vhdx

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Creator is written into the file type identifier of new files.
const Creator = "vhd (github.com/vhdkit/vhd)"

// Defaults for new files (FORMATS.md 4.1: Windows writes dynamic VHDX
// with 32 MiB blocks and fixed VHDX with 2 MiB blocks; Hyper-V's default
// disk is 512-byte logical, 4096-byte physical sectors).
const (
	DefaultBlockSize      = 32 * miB
	DefaultFixedBlockSize = 2 * miB
	defaultLogicalSector  = 512
	defaultPhysicalSector = 4096
)

// Layout of new files, as Windows writes them (FORMATS.md 3.1, 4.1):
// the header section, a 1 MiB log at 1 MiB, the 1 MiB metadata region at
// 2 MiB, the BAT at 3 MiB, payload after the BAT.
const (
	createLogOffset  = 1 * miB
	createLogLength  = 1 * miB
	createMetaOffset = 2 * miB
	createMetaLength = 1 * miB
	createBATOffset  = 3 * miB
)

// Create creates a new VHDX file at path (which must not exist) and
// returns it open for writing. The file is removed again when creation
// fails.
func Create(path string, opts *vdisk.CreateOptions) (*Disk, error) {
	return vdisk.CreatePath(path, opts, CreateFile)
}

// CreateFile writes a new VHDX into the empty file f and returns it open
// for writing. path names the file: a differencing child records its
// parent relative to path's directory.
func CreateFile(f vdisk.File, path string, opts *vdisk.CreateOptions) (*Disk, error) {
	if opts == nil {
		opts = &vdisk.CreateOptions{}
	}
	m, pl, err := createMetadata(path, opts)
	if err != nil {
		return nil, fmt.Errorf("vhdx: create %s: %w", displayPath(path), err)
	}
	m.ParentLocator = pl
	if err := writeNewFile(f, m); err != nil {
		return nil, fmt.Errorf("vhdx: create %s: %w", displayPath(path), err)
	}
	oo := &vdisk.OpenOptions{}
	if m.HasParent {
		oo.Parent.Path = opts.Parent
	}
	return OpenFile(f, path, oo)
}

// createMetadata validates the options and returns the metadata items.
func createMetadata(path string, o *vdisk.CreateOptions) (*Metadata, *ParentLocator, error) {
	typ := o.Type
	if typ == vdisk.TypeUnknown {
		typ = vdisk.TypeDynamic
		if o.Parent != "" {
			typ = vdisk.TypeDifferencing
		}
	}
	if (typ == vdisk.TypeDifferencing) != (o.Parent != "") {
		return nil, nil, fmt.Errorf("%w: a parent is required for, and only for, differencing disks", vdisk.ErrInvalidArgument)
	}
	m := &Metadata{
		BlockSize:           o.BlockSize,
		LogicalSectorSize:   o.LogicalSectorSize,
		PhysicalSectorSize:  o.PhysicalSectorSize,
		VirtualDiskSize:     uint64(o.Size),
		LeaveBlockAllocated: typ == vdisk.TypeFixed,
		HasParent:           typ == vdisk.TypeDifferencing,
		VirtualDiskID:       GUID(o.ID.ToWindowsArray()),
	}
	if o.Size < 0 {
		return nil, nil, fmt.Errorf("%w: negative size %d", vdisk.ErrInvalidArgument, o.Size)
	}
	var pl *ParentLocator
	if typ == vdisk.TypeDifferencing {
		var err error
		if pl, err = inheritParent(path, o.Parent, m); err != nil {
			return nil, nil, err
		}
	}
	if m.BlockSize == 0 {
		m.BlockSize = DefaultBlockSize
		if typ == vdisk.TypeFixed {
			m.BlockSize = DefaultFixedBlockSize
		}
	}
	if m.LogicalSectorSize == 0 {
		m.LogicalSectorSize = defaultLogicalSector
	}
	if m.PhysicalSectorSize == 0 {
		m.PhysicalSectorSize = max(defaultPhysicalSector, m.LogicalSectorSize)
	}
	switch {
	case typ != vdisk.TypeFixed && typ != vdisk.TypeDynamic && typ != vdisk.TypeDifferencing:
		return nil, nil, fmt.Errorf("%w: disk type %s", vdisk.ErrInvalidArgument, typ)
	case !validBlockSize(m.BlockSize):
		return nil, nil, fmt.Errorf("%w: block size %d not a power of two from 1 MiB to 256 MiB", vdisk.ErrInvalidArgument, m.BlockSize)
	case !validSectorSize(m.LogicalSectorSize):
		return nil, nil, fmt.Errorf("%w: logical sector size %d, want 512 or 4096", vdisk.ErrInvalidArgument, m.LogicalSectorSize)
	case !validSectorSize(m.PhysicalSectorSize):
		return nil, nil, fmt.Errorf("%w: physical sector size %d, want 512 or 4096", vdisk.ErrInvalidArgument, m.PhysicalSectorSize)
	case m.VirtualDiskSize == 0 || m.VirtualDiskSize > maxVirtualSize:
		return nil, nil, fmt.Errorf("%w: size %d not in (0, 64 TiB]", vdisk.ErrInvalidArgument, m.VirtualDiskSize)
	case m.VirtualDiskSize%uint64(m.LogicalSectorSize) != 0:
		return nil, nil, fmt.Errorf("%w: size %d not a multiple of the logical sector size %d", vdisk.ErrInvalidArgument, m.VirtualDiskSize, m.LogicalSectorSize)
	}
	if m.VirtualDiskID.IsZero() {
		g, err := newGUID()
		if err != nil {
			return nil, nil, err
		}
		m.VirtualDiskID = g
	}
	return m, pl, nil
}

// inheritParent opens the parent read-only, copies its size, sector
// sizes and Virtual Disk ID into m, and builds the parent locator
// (FORMATS.md 3.8, 3.9).
func inheritParent(childPath, parentPath string, m *Metadata) (*ParentLocator, error) {
	p, err := Open(parentPath, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open parent: %w", err)
	}
	defer p.Close()
	if m.VirtualDiskSize != 0 && m.VirtualDiskSize != p.meta.VirtualDiskSize {
		return nil, fmt.Errorf("%w: size %d differs from the parent's %d", vdisk.ErrInvalidArgument, m.VirtualDiskSize, p.meta.VirtualDiskSize)
	}
	if m.LogicalSectorSize != 0 && m.LogicalSectorSize != p.meta.LogicalSectorSize {
		return nil, fmt.Errorf("%w: logical sector size %d differs from the parent's %d", vdisk.ErrInvalidArgument, m.LogicalSectorSize, p.meta.LogicalSectorSize)
	}
	m.VirtualDiskSize = p.meta.VirtualDiskSize
	m.LogicalSectorSize = p.meta.LogicalSectorSize
	if m.PhysicalSectorSize == 0 {
		m.PhysicalSectorSize = p.meta.PhysicalSectorSize
	}
	if m.VirtualDiskID.IsZero() {
		m.VirtualDiskID = p.meta.VirtualDiskID
	}
	absParent, err := filepath.Abs(parentPath)
	if err != nil {
		return nil, err
	}
	pl := &ParentLocator{Type: locatorTypeVHDX, Entries: []KeyValue{
		{"parent_linkage", linkageText(p.hdr.DataWriteGUID)},
	}}
	absChild, err := filepath.Abs(childPath)
	if err == nil && childPath != "" {
		if rel, err := filepath.Rel(filepath.Dir(absChild), absParent); err == nil {
			pl.Entries = append(pl.Entries, KeyValue{"relative_path", windowsPath(rel)})
		}
	}
	// absolute_win32_path is \\?\ plus a drive letter or UNC share and
	// the path (FORMATS.md 3.9). A host path without a volume name
	// (Linux, macOS) has neither; it is still recorded, as \\?\ and
	// the path with backslashes, because libvhdi (vhdimount) finds a
	// parent only through this key (by the file name it ends with) and
	// our reader maps it back to the host path when absolute paths are
	// allowed. Windows looks at relative_path first, which we always
	// write, so it never needs this one.
	if w, ok := win32ExtendedPath(windowsPath(absParent)); ok {
		pl.Entries = append(pl.Entries, KeyValue{"absolute_win32_path", w})
	} else if filepath.VolumeName(absParent) == "" {
		pl.Entries = append(pl.Entries, KeyValue{"absolute_win32_path",
			`\\?\` + windowsPath(absParent)})
	}
	return pl, nil
}

// win32ExtendedPath returns the extended-length form (FORMATS.md 3.9)
// of an absolute Windows path with a drive letter or UNC share:
// C:\x becomes \\?\C:\x and \\srv\share\x becomes \\?\UNC\srv\share\x.
// A path already in that form (as filepath.Abs keeps one it was given)
// is returned as is; \\.\ device paths, \\?\Volume{...} paths and
// paths without a drive or share report false.
func win32ExtendedPath(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, `\\?\`); ok {
		if strings.HasPrefix(strings.ToUpper(rest), `UNC\`) {
			return p, len(rest) > len(`UNC\`)
		}
		p = rest
	} else if strings.HasPrefix(p, `\\.\`) {
		return "", false
	}
	switch {
	case len(p) >= 3 && p[1] == ':' && p[2] == '\\' &&
		('a' <= p[0]|0x20 && p[0]|0x20 <= 'z'):
		return `\\?\` + p, true
	case len(p) > 2 && strings.HasPrefix(p, `\\`) && p[2] != '\\':
		return `\\?\UNC\` + p[2:], true
	}
	return "", false
}

// windowsPath turns host separators into backslashes.
func windowsPath(p string) string {
	return strings.ReplaceAll(filepath.ToSlash(p), "/", `\`)
}

// writeNewFile lays out a new file in f: payload space first (by
// extending the file), then the structures, headers last, then one sync.
func writeNewFile(f vdisk.File, m *Metadata) error {
	g := newGeometry(m)
	batLen := roundUp(g.batBytes(), miB)
	if batLen > 1<<32-miB {
		return fmt.Errorf("%w: BAT of %d bytes exceeds a region", vdisk.ErrInvalidArgument, batLen)
	}
	payload := int64(createBATOffset) + batLen
	size := payload
	var bat []byte
	if m.LeaveBlockAllocated {
		// Fixed: every payload block present, back to back.
		size += g.dataBlocks * g.blockSize
		entries := make([]batEntry, g.totalEntries)
		for k := range g.dataBlocks {
			entries[g.payloadIndex(k)] = makeEntry(BlockFullyPresent, payload+k*g.blockSize)
		}
		bat = encodeBAT(entries)
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	fw, err := newGUID()
	if err != nil {
		return err
	}
	dw, err := newGUID()
	if err != nil {
		return err
	}
	rt := &RegionTable{Entries: []RegionTableEntry{
		{GUID: regionBAT, FileOffset: createBATOffset, Length: uint32(batLen), Required: 1},
		{GUID: regionMetadata, FileOffset: createMetaOffset, Length: createMetaLength, Required: 1},
	}}
	rtb := rt.encode()
	writes := []struct {
		off int64
		b   []byte
	}{
		{0, (&FileIdentifier{Creator: Creator}).encode()},
		{regionTable1Offset, rtb},
		{regionTable2Offset, rtb},
		{createMetaOffset, encodeMetadataRegion(m)},
		{createBATOffset, bat},
	}
	for i := range 2 {
		h := &Header{SequenceNumber: uint64(i + 1), FileWriteGUID: fw, DataWriteGUID: dw,
			Version: 1, LogLength: createLogLength, LogOffset: createLogOffset}
		writes = append(writes, struct {
			off int64
			b   []byte
		}{[2]int64{header1Offset, header2Offset}[i], h.encode()})
	}
	for _, w := range writes {
		if len(w.b) == 0 {
			continue
		}
		if _, err := f.WriteAt(w.b, w.off); err != nil {
			return err
		}
	}
	return f.Sync()
}
