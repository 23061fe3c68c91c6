package vhdx

import (
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf16"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// This file holds the metadata region ([MS-VHDX] 2.6; FORMATS.md 3.8,
// 3.9): the table, the system items and the parent locator.

// Metadata table limits ([MS-VHDX] 2.6.1; FORMATS.md 3.8).
const (
	metadataTableSize  = 64 * kiB
	maxMetadataEntries = 2047
	maxUserMetadata    = 1024
	maxMetadataItem    = 1 * miB
)

// Metadata entry flags ([MS-VHDX] 2.6.1.2).
const (
	metaIsUser        = 1 << 0
	metaIsVirtualDisk = 1 << 1
	metaIsRequired    = 1 << 2
)

// System metadata item GUIDs ([MS-VHDX] 2.6.2; FORMATS.md 3.8).
var (
	itemFileParameters  = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	itemVirtualDiskSize = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	itemVirtualDiskID   = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	itemLogicalSector   = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	itemPhysicalSector  = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	itemParentLocator   = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")

	// locatorTypeVHDX is the only parent locator type ([MS-VHDX] 2.6.2.6).
	locatorTypeVHDX = mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
)

// MetadataTableEntry is one entry of the metadata table ([MS-VHDX]
// 2.6.1.2; FORMATS.md 3.8). Offset is relative to the region start.
type MetadataTableEntry struct {
	ItemID GUID
	Offset uint32
	Length uint32
	Flags  uint32
}

// MetadataTable is the table at the start of the metadata region
// ([MS-VHDX] 2.6.1; FORMATS.md 3.8).
type MetadataTable struct {
	Entries []MetadataTableEntry
}

const metadataSignature = "metadata"

// decodeMetadataTable decodes the 64 KiB table of a metadata region of
// regionLength bytes at file offset off. It checks the signature, count,
// item bounds, uniqueness and overlaps.
func decodeMetadataTable(b []byte, off int64, regionLength uint32) (*MetadataTable, error) {
	const name = "metadata table"
	if len(b) != metadataTableSize {
		return nil, corrupt(name, "", off, "short table: %d bytes", len(b))
	}
	if string(b[:8]) != metadataSignature {
		return nil, corrupt(name, "Signature", off, "missing %q", metadataSignature)
	}
	n := int(le.Uint16(b[10:]))
	if n > maxMetadataEntries {
		return nil, corrupt(name, "EntryCount", off+10, "%d entries, at most %d", n, maxMetadataEntries)
	}
	t := &MetadataTable{Entries: make([]MetadataTableEntry, n)}
	users := 0
	for i := range t.Entries {
		p := 32 + 32*i
		eoff := off + int64(p)
		e := &t.Entries[i]
		copy(e.ItemID[:], b[p:p+16])
		e.Offset = le.Uint32(b[p+16:])
		e.Length = le.Uint32(b[p+20:])
		e.Flags = le.Uint32(b[p+24:])
		if e.Flags&metaIsUser != 0 {
			users++
		}
		switch {
		case e.Length > maxMetadataItem:
			return nil, corrupt(name, "Length", eoff+20, "item %s length %d above 1 MiB", e.ItemID, e.Length)
		case e.Length == 0 && e.Offset != 0:
			return nil, corrupt(name, "Offset", eoff+16, "empty item %s with offset %d", e.ItemID, e.Offset)
		case e.Length != 0 && e.Offset < metadataTableSize:
			return nil, corrupt(name, "Offset", eoff+16, "item %s offset %d inside the table", e.ItemID, e.Offset)
		case uint64(e.Offset)+uint64(e.Length) > uint64(regionLength):
			return nil, corrupt(name, "Offset", eoff+16, "item %s [%d, +%d) beyond region length %d", e.ItemID, e.Offset, e.Length, regionLength)
		}
		for j := range i {
			o := &t.Entries[j]
			if o.ItemID == e.ItemID && o.Flags&metaIsUser == e.Flags&metaIsUser {
				return nil, corrupt(name, "ItemId", eoff, "item %s listed twice", e.ItemID)
			}
			if overlaps(uint64(o.Offset), uint64(o.Length), uint64(e.Offset), uint64(e.Length)) {
				return nil, corrupt(name, "Offset", eoff+16, "item %s overlaps item %s", e.ItemID, o.ItemID)
			}
		}
	}
	if users > maxUserMetadata {
		return nil, corrupt(name, "EntryCount", off+10, "%d user items, at most %d", users, maxUserMetadata)
	}
	return t, nil
}

// encode returns the 64 KiB table.
func (t *MetadataTable) encode() []byte {
	b := make([]byte, metadataTableSize)
	copy(b, metadataSignature)
	le.PutUint16(b[10:], uint16(len(t.Entries)))
	for i, e := range t.Entries {
		p := 32 + 32*i
		copy(b[p:], e.ItemID[:])
		le.PutUint32(b[p+16:], e.Offset)
		le.PutUint32(b[p+20:], e.Length)
		le.PutUint32(b[p+24:], e.Flags)
	}
	return b
}

// Metadata holds the decoded system items ([MS-VHDX] 2.6.2).
type Metadata struct {
	BlockSize           uint32 // File Parameters
	LeaveBlockAllocated bool   // File Parameters bit 0
	HasParent           bool   // File Parameters bit 1
	VirtualDiskSize     uint64
	VirtualDiskID       GUID
	LogicalSectorSize   uint32
	PhysicalSectorSize  uint32
	ParentLocator       *ParentLocator // nil unless HasParent
}

// Type returns the disk type the File Parameters describe.
func (m *Metadata) Type() vdisk.Type {
	switch {
	case m.HasParent:
		return vdisk.TypeDifferencing
	case m.LeaveBlockAllocated:
		return vdisk.TypeFixed
	}
	return vdisk.TypeDynamic
}

// decodeMetadata decodes the system items listed in t. item returns the
// bytes of an entry (its Length bytes); regionOff is the region's file
// offset, for error offsets. Unknown items flagged IsRequired make the
// file unsupported.
func decodeMetadata(t *MetadataTable, regionOff int64, item func(MetadataTableEntry) ([]byte, error)) (*Metadata, error) {
	m := &Metadata{}
	var seen [6]bool
	known := [6]GUID{itemFileParameters, itemVirtualDiskSize, itemVirtualDiskID,
		itemLogicalSector, itemPhysicalSector, itemParentLocator}
	for i, e := range t.Entries {
		k := -1
		if e.Flags&metaIsUser == 0 {
			for j, g := range known {
				if g == e.ItemID {
					k = j
				}
			}
		}
		if k < 0 {
			if e.Flags&metaIsRequired != 0 {
				return nil, vdisk.Unsupportedf("vhdx: metadata entry %d: unknown required item %s", i, e.ItemID)
			}
			continue
		}
		b, err := item(e)
		if err != nil {
			return nil, err
		}
		if err := m.decodeItem(k, b, regionOff+int64(e.Offset)); err != nil {
			return nil, err
		}
		seen[k] = true
	}
	names := [6]string{"file parameters", "virtual disk size", "virtual disk id",
		"logical sector size", "physical sector size", "parent locator"}
	for k := range 5 {
		if !seen[k] {
			return nil, corrupt("metadata table", "", regionOff, "no %s item", names[k])
		}
	}
	if m.HasParent != seen[5] {
		return nil, corrupt("metadata table", "", regionOff,
			"has parent %t but parent locator present %t", m.HasParent, seen[5])
	}
	if m.VirtualDiskSize%uint64(m.LogicalSectorSize) != 0 {
		return nil, corrupt("virtual disk size", "", regionOff, "size %d not a multiple of the logical sector size %d", m.VirtualDiskSize, m.LogicalSectorSize)
	}
	return m, nil
}

// decodeItem decodes system item k (index into the known list) at off.
func (m *Metadata) decodeItem(k int, b []byte, off int64) error {
	want := [6]int{8, 8, 16, 4, 4, -1}[k]
	names := [6]string{"file parameters", "virtual disk size", "virtual disk id",
		"logical sector size", "physical sector size", "parent locator"}
	if want >= 0 && len(b) != want {
		return corrupt(names[k], "Length", off, "item is %d bytes, want %d", len(b), want)
	}
	switch k {
	case 0:
		m.BlockSize = le.Uint32(b)
		flags := le.Uint32(b[4:])
		m.LeaveBlockAllocated = flags&1 != 0
		m.HasParent = flags&2 != 0
		if !validBlockSize(m.BlockSize) {
			return corrupt(names[k], "BlockSize", off, "block size %d not a power of two in [1 MiB, 256 MiB]", m.BlockSize)
		}
	case 1:
		m.VirtualDiskSize = le.Uint64(b)
		if m.VirtualDiskSize == 0 || m.VirtualDiskSize > maxVirtualSize {
			return corrupt(names[k], "VirtualDiskSize", off, "size %d not in (0, 64 TiB]", m.VirtualDiskSize)
		}
	case 2:
		copy(m.VirtualDiskID[:], b)
	case 3:
		m.LogicalSectorSize = le.Uint32(b)
		if !validSectorSize(m.LogicalSectorSize) {
			return corrupt(names[k], "LogicalSectorSize", off, "sector size %d, want 512 or 4096", m.LogicalSectorSize)
		}
	case 4:
		m.PhysicalSectorSize = le.Uint32(b)
		if !validSectorSize(m.PhysicalSectorSize) {
			return corrupt(names[k], "PhysicalSectorSize", off, "sector size %d, want 512 or 4096", m.PhysicalSectorSize)
		}
	case 5:
		pl, err := decodeParentLocator(b, off)
		if err != nil {
			return err
		}
		m.ParentLocator = pl
	}
	return nil
}

func validBlockSize(n uint32) bool {
	return n >= minBlockSize && n <= maxBlockSize && bits.OnesCount32(n) == 1
}

func validSectorSize(n uint32) bool { return n == 512 || n == 4096 }

// encodeMetadataRegion returns the table and the items laid out back to
// back from 64 KiB, File Parameters first, as Windows and qemu do.
func encodeMetadataRegion(m *Metadata) []byte {
	type item struct {
		id    GUID
		flags uint32
		data  []byte
	}
	var fp, vs [8]byte
	le.PutUint32(fp[:], m.BlockSize)
	var flags uint32
	if m.LeaveBlockAllocated {
		flags |= 1
	}
	if m.HasParent {
		flags |= 2
	}
	le.PutUint32(fp[4:], flags)
	le.PutUint64(vs[:], m.VirtualDiskSize)
	var ls, ps [4]byte
	le.PutUint32(ls[:], m.LogicalSectorSize)
	le.PutUint32(ps[:], m.PhysicalSectorSize)
	id := m.VirtualDiskID
	items := []item{
		{itemFileParameters, metaIsRequired, fp[:]},
		{itemVirtualDiskSize, metaIsRequired | metaIsVirtualDisk, vs[:]},
		{itemVirtualDiskID, metaIsRequired | metaIsVirtualDisk, id[:]},
		{itemLogicalSector, metaIsRequired | metaIsVirtualDisk, ls[:]},
		{itemPhysicalSector, metaIsRequired | metaIsVirtualDisk, ps[:]},
	}
	if m.HasParent && m.ParentLocator != nil {
		items = append(items, item{itemParentLocator, metaIsRequired, m.ParentLocator.encode()})
	}
	t := &MetadataTable{}
	off := uint32(metadataTableSize)
	body := []byte{}
	for _, it := range items {
		t.Entries = append(t.Entries, MetadataTableEntry{
			ItemID: it.id, Offset: off, Length: uint32(len(it.data)), Flags: it.flags})
		body = append(body, it.data...)
		off += uint32(len(it.data))
	}
	return append(t.encode(), body...)
}

// KeyValue is one parent locator entry ([MS-VHDX] 2.6.2.6.2).
type KeyValue struct {
	Key, Value string
}

// ParentLocator is the parent locator item ([MS-VHDX] 2.6.2.6;
// FORMATS.md 3.9).
type ParentLocator struct {
	Type    GUID
	Entries []KeyValue // in stored order
}

// Get returns the value of key (keys are case-sensitive).
func (pl *ParentLocator) Get(key string) (string, bool) {
	for _, kv := range pl.Entries {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// decodeParentLocator decodes a parent locator item at file offset off.
func decodeParentLocator(b []byte, off int64) (*ParentLocator, error) {
	const name = "parent locator"
	if len(b) < 20 {
		return nil, corrupt(name, "", off, "item is %d bytes, need 20", len(b))
	}
	pl := &ParentLocator{}
	copy(pl.Type[:], b[:16])
	if pl.Type != locatorTypeVHDX {
		return nil, corrupt(name, "LocatorType", off, "unknown locator type %s", pl.Type)
	}
	n := int(le.Uint16(b[18:]))
	if 20+12*n > len(b) {
		return nil, corrupt(name, "KeyValueCount", off+18, "%d entries do not fit in %d bytes", n, len(b))
	}
	pl.Entries = make([]KeyValue, 0, n)
	str := func(i int, field string, o uint32, l uint16) (string, error) {
		eoff := off + 20 + 12*int64(i)
		if o == 0 || l == 0 || l%2 != 0 || uint64(o)+uint64(l) > uint64(len(b)) {
			return "", corrupt(name, field, eoff, "entry %d: string [%d, +%d) outside the %d-byte item", i, o, l, len(b))
		}
		s := b[o : o+uint32(l)]
		u := make([]uint16, len(s)/2)
		for j := range u {
			u[j] = le.Uint16(s[2*j:])
			if u[j] == 0 {
				return "", corrupt(name, field, off+int64(o), "entry %d: NUL inside string", i)
			}
		}
		return string(utf16.Decode(u)), nil
	}
	for i := range n {
		p := 20 + 12*i
		k, err := str(i, "KeyOffset", le.Uint32(b[p:]), le.Uint16(b[p+8:]))
		if err != nil {
			return nil, err
		}
		v, err := str(i, "ValueOffset", le.Uint32(b[p+4:]), le.Uint16(b[p+10:]))
		if err != nil {
			return nil, err
		}
		if _, dup := pl.Get(k); dup {
			return nil, corrupt(name, "KeyOffset", off+int64(p), "key %q listed twice", k)
		}
		pl.Entries = append(pl.Entries, KeyValue{k, v})
	}
	if _, ok := pl.Get("parent_linkage"); !ok {
		return nil, corrupt(name, "", off, "no parent_linkage entry")
	}
	hasPath := false
	for _, k := range []string{"relative_path", "volume_path", "absolute_win32_path"} {
		_, ok := pl.Get(k)
		hasPath = hasPath || ok
	}
	if !hasPath {
		return nil, corrupt(name, "", off, "no path entry")
	}
	return pl, nil
}

// encode returns the item bytes: header, entries, then the strings.
func (pl *ParentLocator) encode() []byte {
	n := len(pl.Entries)
	b := make([]byte, 20+12*n)
	copy(b, pl.Type[:])
	le.PutUint16(b[18:], uint16(n))
	put := func(s string) (uint32, uint16) {
		o := uint32(len(b))
		for _, v := range utf16.Encode([]rune(s)) {
			b = le.AppendUint16(b, v)
		}
		return o, uint16(uint32(len(b)) - o)
	}
	for i, kv := range pl.Entries {
		ko, kl := put(kv.Key)
		vo, vl := put(kv.Value)
		p := 20 + 12*i
		le.PutUint32(b[p:], ko)
		le.PutUint32(b[p+4:], vo)
		le.PutUint16(b[p+8:], kl)
		le.PutUint16(b[p+10:], vl)
	}
	return b
}

// linkageText formats a DataWriteGuid as parent_linkage text:
// lowercase and braced (FORMATS.md 3.9).
func linkageText(g GUID) string { return "{" + g.String() + "}" }

// parseLinkage parses parent_linkage text, case-insensitively, braces
// optional.
func parseLinkage(s string) (GUID, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	g, err := parseGUIDText(strings.ToLower(s))
	if err != nil {
		return GUID{}, fmt.Errorf("vhdx: parent linkage %q: %w", s, err)
	}
	return g, nil
}
