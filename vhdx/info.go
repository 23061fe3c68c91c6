package vhdx

import (
	"fmt"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Map returns the extents covering [off, off+length), adjacent runs of
// equal state and depth merged (data runs only when their file offsets
// are contiguous). For a differencing disk it describes the merged
// chain; Depth says which file holds the data.
func (d *Disk) Map(off, length int64) ([]vdisk.Extent, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, vdisk.ErrClosed
	}
	if off < 0 || length < 0 || off > d.geo.virtualSize || length > d.geo.virtualSize-off {
		return nil, fmt.Errorf("vhdx: map [%d, +%d) beyond virtual size %d: %w", off, length, d.geo.virtualSize, vdisk.ErrOutOfRange)
	}
	var out []vdisk.Extent
	err := d.mapRange(off, length, 0, func(e vdisk.Extent) { out = appendExtent(out, e) })
	return out, err
}

// appendExtent appends e, merging it into the last extent when they
// continue each other.
func appendExtent(out []vdisk.Extent, e vdisk.Extent) []vdisk.Extent {
	if e.Length == 0 {
		return out
	}
	if n := len(out); n > 0 {
		l := &out[n-1]
		if l.State == e.State && l.Depth == e.Depth && l.End() == e.Offset &&
			(e.State != vdisk.Data || l.FileOffset < 0 && e.FileOffset < 0 ||
				l.FileOffset >= 0 && l.FileOffset+l.Length == e.FileOffset) {
			l.Length += e.Length
			return out
		}
	}
	return append(out, e)
}

// mapRange emits the extents of [off, off+length) for this file at
// chain depth depth; the caller holds d.mu (read).
func (d *Disk) mapRange(off, length int64, depth int, emit func(vdisk.Extent)) error {
	bs := d.geo.blockSize
	for length > 0 {
		k, in := off/bs, off%bs
		n := min(length, bs-in)
		e := d.bat[d.geo.payloadIndex(k)]
		switch e.state() {
		case BlockFullyPresent:
			emit(vdisk.Extent{Offset: off, Length: n, State: vdisk.Data, FileOffset: e.offset() + in, Depth: depth})
		case BlockPartiallyPresent:
			if err := d.mapPartial(k, in, off, n, e, depth, emit); err != nil {
				return err
			}
		case BlockNotPresent:
			if err := d.mapParent(off, n, depth, emit); err != nil {
				return err
			}
		default:
			emit(vdisk.Extent{Offset: off, Length: n, State: vdisk.Zero, FileOffset: -1, Depth: depth})
		}
		off, length = off+n, length-n
	}
	return nil
}

// mapParent maps a range this file does not hold.
func (d *Disk) mapParent(off, n int64, depth int, emit func(vdisk.Extent)) error {
	if d.parentSkipped {
		// The parent was not opened: what it holds is unknown, so the
		// range must be read (which fails), never taken for zeros.
		emit(vdisk.Extent{Offset: off, Length: n, State: vdisk.Data, FileOffset: -1, Depth: depth + 1})
		return nil
	}
	if d.parent == nil {
		emit(vdisk.Extent{Offset: off, Length: n, State: vdisk.Unallocated, FileOffset: -1, Depth: depth})
		return nil
	}
	p := d.parent
	p.mu.RLock()
	defer p.mu.RUnlock()
	inside := max(0, min(n, p.geo.virtualSize-off))
	if inside > 0 {
		if err := p.mapRange(off, inside, depth+1, emit); err != nil {
			return err
		}
	}
	if inside < n {
		emit(vdisk.Extent{Offset: off + inside, Length: n - inside, State: vdisk.Unallocated, FileOffset: -1, Depth: depth + 1})
	}
	return nil
}

// mapPartial maps a PARTIALLY_PRESENT block run by run of its bitmap.
func (d *Disk) mapPartial(k, in, off, n int64, e batEntry, depth int, emit func(vdisk.Extent)) error {
	ss := d.geo.sectorSize
	s0, s1 := in/ss, (in+n+ss-1)/ss
	bm, bit0, err := d.sectorBitmap(k, s0, s1)
	if err != nil {
		return err
	}
	vblock := k * d.geo.blockSize
	for s := s0; s < s1; {
		set, run := bitRun(bm, bit0+s-s0, bit0+s1-s0)
		lo, hi := max(s*ss, in), min((s+run)*ss, in+n)
		if set {
			emit(vdisk.Extent{Offset: vblock + lo, Length: hi - lo, State: vdisk.Data, FileOffset: e.offset() + lo, Depth: depth})
		} else if err := d.mapParent(vblock+lo, hi-lo, depth, emit); err != nil {
			return err
		}
		s += run
	}
	return nil
}

// Info describes the disk and, recursively, its parents.
func (d *Disk) Info() vdisk.Info {
	d.mu.RLock()
	defer d.mu.RUnlock()
	present := int64(0)
	for k := range d.geo.dataBlocks {
		s := d.bat[d.geo.payloadIndex(k)].state()
		if s == BlockFullyPresent || s == BlockPartiallyPresent {
			present++
		}
	}
	fileSize := d.fileSize
	if _, ov := d.r.(*overlay); !ov {
		if sz, err := d.f.Size(); err == nil {
			fileSize = sz
		}
	}
	info := vdisk.Info{
		Path:               d.path,
		Format:             vdisk.FormatVHDX,
		Type:               d.typ,
		VirtualSize:        d.geo.virtualSize,
		FileSize:           fileSize,
		BlockSize:          d.meta.BlockSize,
		LogicalSectorSize:  d.meta.LogicalSectorSize,
		PhysicalSectorSize: d.meta.PhysicalSectorSize,
		AllocatedBytes:     present * d.geo.blockSize,
		ID:                 d.meta.VirtualDiskID.String(),
		ReadOnly:           d.readOnly,
	}
	det := vdisk.Fields{
		{Key: "creator", Value: d.ident.Creator},
		{Key: "file_write_guid", Value: d.hdr.FileWriteGUID.String()},
		{Key: "data_write_guid", Value: d.hdr.DataWriteGUID.String()},
		{Key: "log_guid", Value: d.hdr.LogGUID.String()},
		{Key: "log_state", Value: d.logState},
		{Key: "header_sequence", Value: d.hdr.SequenceNumber},
		{Key: "current_header", Value: d.hdrSlot + 1},
		{Key: "log_offset", Value: d.hdr.LogOffset},
		{Key: "log_length", Value: d.hdr.LogLength},
		{Key: "region_table_copy", Value: d.rtCopy},
		{Key: "bat_offset", Value: d.batRegion.FileOffset},
		{Key: "bat_length", Value: d.batRegion.Length},
		{Key: "metadata_offset", Value: d.metaRegion.FileOffset},
		{Key: "metadata_length", Value: d.metaRegion.Length},
		{Key: "bat_entries", Value: d.geo.totalEntries},
		{Key: "chunk_ratio", Value: d.geo.chunkRatio},
		{Key: "present_blocks", Value: present},
		{Key: "leave_block_allocated", Value: d.meta.LeaveBlockAllocated},
		{Key: "has_parent", Value: d.meta.HasParent},
	}
	if pl := d.meta.ParentLocator; pl != nil {
		loc := make(vdisk.Fields, 0, len(pl.Entries))
		for _, kv := range pl.Entries {
			loc = append(loc, vdisk.Field{Key: kv.Key, Value: kv.Value})
		}
		det = append(det, vdisk.Field{Key: "parent_locator", Value: loc})
	}
	info.Details = det
	if d.parent != nil {
		pi := d.parent.Info()
		info.Parent = &pi
	}
	return info
}
