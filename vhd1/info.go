package vhd1

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// Info describes the disk and, recursively, its parents. Details carry
// the footer and header fields under stable snake_case keys.
func (d *Disk) Info() vdisk.Info {
	d.mu.RLock()
	defer d.mu.RUnlock()
	f := &d.footer
	info := vdisk.Info{
		Path:               d.path,
		Format:             vdisk.FormatVHD,
		Type:               vdiskType(f.DiskType),
		VirtualSize:        d.Size(),
		FileSize:           d.fileSize,
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		AllocatedBytes:     d.Size(),
		ID:                 uuid.UUID(f.UniqueID).String(),
		ReadOnly:           d.readOnly,
	}
	if size, err := d.f.Size(); err == nil {
		info.FileSize = size
	}
	if d.header != nil {
		info.BlockSize = d.header.BlockSize
		var n int64
		for _, e := range d.bat {
			if e != unused {
				n++
			}
		}
		info.AllocatedBytes = n * int64(d.header.BlockSize)
	}
	info.Details = d.details()
	if d.parent != nil {
		p := d.parent.Info()
		info.Parent = &p
	}
	return info
}

func vdiskType(t DiskType) vdisk.Type {
	switch t {
	case DiskTypeFixed:
		return vdisk.TypeFixed
	case DiskTypeDynamic:
		return vdisk.TypeDynamic
	case DiskTypeDifferencing:
		return vdisk.TypeDifferencing
	}
	return vdisk.TypeUnknown
}

func (d *Disk) details() vdisk.Fields {
	f := &d.footer
	g := f.Geometry
	fs := vdisk.Fields{
		{Key: "creator_application", Value: creatorName(f.CreatorApp)},
		{Key: "creator_version", Value: fmt.Sprintf("%d.%d", f.CreatorVersion>>16,
			f.CreatorVersion&0xFFFF)},
		{Key: "creator_host_os", Value: creatorName(f.CreatorHostOS)},
		{Key: "geometry", Value: g.String()},
		{Key: "chs_size", Value: g.Size()},
		{Key: "original_size", Value: f.OriginalSize},
		{Key: "unique_id", Value: uuid.UUID(f.UniqueID).String()},
		{Key: "saved_state", Value: f.SavedState != 0},
		{Key: "timestamp", Value: Time(f.TimeStamp).Format(time.RFC3339)},
		{Key: "features", Value: fmt.Sprintf("0x%08x", f.Features)},
		{Key: "data_offset", Value: fmt.Sprintf("0x%x", f.DataOffset)},
	}
	if h := d.header; h != nil {
		fs = append(fs,
			vdisk.Field{Key: "table_offset", Value: fmt.Sprintf("0x%x", h.TableOffset)},
			vdisk.Field{Key: "max_table_entries", Value: h.MaxTableEntries})
	}
	if f.DiskType == DiskTypeDifferencing {
		h := d.header
		fs = append(fs,
			vdisk.Field{Key: "parent_unique_id",
				Value: uuid.UUID(h.ParentUniqueID).String()},
			vdisk.Field{Key: "parent_timestamp",
				Value: Time(h.ParentTimeStamp).Format(time.RFC3339)},
			vdisk.Field{Key: "parent_name", Value: h.ParentName()},
			vdisk.Field{Key: "parent_locators", Value: d.locatorTexts()},
			vdisk.Field{Key: "parent_path", Value: d.parentPath})
	}
	fs = append(fs, vdisk.Field{Key: "footer_source", Value: d.footerSrc})
	if d.copyStale {
		fs = append(fs, vdisk.Field{Key: "footer_copy_differs", Value: true})
	}
	if len(d.warnings) > 0 {
		fs = append(fs, vdisk.Field{Key: "warnings", Value: d.warnings})
	}
	return fs
}

// locatorTexts describes each used parent locator as "CODE: path".
func (d *Disk) locatorTexts() []string {
	l := &layout{end: d.dataEnd(), footer: &d.footer, header: d.header}
	var out []string
	for i, loc := range d.header.ParentLocators {
		if loc.PlatformCode == PlatformNone {
			continue
		}
		s, err := readLocator(readerAtLayout{d.f, l}, i)
		if err != nil {
			s = "(" + err.Error() + ")"
		}
		out = append(out, fmt.Sprintf("%v: %s", loc.PlatformCode, s))
	}
	return out
}

// dataEnd returns where data must end: the end footer's offset, or the
// file size when the footer came from the copy at offset 0.
func (d *Disk) dataEnd() int64 {
	if d.footerSrc == "copy at 0" {
		size, err := d.f.Size()
		if err != nil {
			return d.fileSize
		}
		return size
	}
	return d.next
}
