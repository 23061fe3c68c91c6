package virtdisk

import (
	"testing"
	"unsafe"

	"github.com/Microsoft/go-winio/pkg/guid"
)

// TestLayout pins the structures to virtdisk.h's 64-bit layout (offsets
// computed from the SDK's member types and natural alignment).
func TestLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("offsets below are for 64-bit targets")
	}
	var c CreateParameters
	var o OpenParameters
	var a AttachParameters
	var i Info
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"CREATE.Version2", unsafe.Offsetof(c.Version2), 8},
		{"CREATE.MaximumSize", unsafe.Offsetof(c.Version2.MaximumSize), 16},
		{"CREATE.BlockSizeInBytes", unsafe.Offsetof(c.Version2.BlockSizeInBytes), 24},
		{"CREATE.ParentPath", unsafe.Offsetof(c.Version2.ParentPath), 40},
		{"CREATE.OpenFlags", unsafe.Offsetof(c.Version2.OpenFlags), 56},
		{"CREATE.ParentVirtualStorageType", unsafe.Offsetof(c.Version2.ParentVirtualStorageType), 60},
		{"CREATE.SourceVirtualStorageType", unsafe.Offsetof(c.Version2.SourceVirtualStorageType), 80},
		{"CREATE.ResiliencyGuid", unsafe.Offsetof(c.Version2.ResiliencyGUID), 100},
		{"OPEN.Version2", unsafe.Offsetof(o.Version2), 4},
		{"OPEN.ResiliencyGuid", unsafe.Offsetof(o.Version2.ResiliencyGUID), 8},
		{"sizeof OPEN v2", unsafe.Sizeof(o), 28},
		{"ATTACH.Version2", unsafe.Offsetof(a.Version2), 8},
		{"sizeof ATTACH v2", unsafe.Sizeof(a), 24},
		{"INFO.Data", unsafe.Offsetof(i.Data), 8},
		{"sizeof INFO", unsafe.Sizeof(i), 32},
		{"sizeof VIRTUAL_STORAGE_TYPE", unsafe.Sizeof(VirtualStorageType{}), 20},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// TestInfoGUID checks that the union holds a GUID in Windows' in-memory
// layout (Data1..Data3 little-endian).
func TestInfoGUID(t *testing.T) {
	g, err := guid.FromString("12345678-9abc-def0-1122-334455667788")
	if err != nil {
		t.Fatal(err)
	}
	var i Info
	i.SetGUID(g)
	want := []byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	if string(i.Data[:16]) != string(want) {
		t.Errorf("Data = % x, want % x", i.Data[:16], want)
	}
	if i.GUID() != g {
		t.Errorf("GUID() = %v, want %v", i.GUID(), g)
	}
}
