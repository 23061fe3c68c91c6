package vhd

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/Microsoft/go-winio/pkg/guid"
	winio "github.com/Microsoft/go-winio/vhd"
	"golang.org/x/sys/windows"
)

// The go-winio API, function by function. Each of our functions is
// assigned to a variable of the function type go-winio declares, written
// with our types, and go-winio's own function to the same type written
// with its types: if go-winio's signature changes, or ours, this file
// stops compiling. TestWinioShapes then checks that the two type sets
// have the same layout, field by field.
var (
	_ func(string, uint32, uint32) error = CreateVhdx
	_ func(string, uint32, uint32) error = winio.CreateVhdx

	_ func(string, string, uint32) error = CreateDiffVhd
	_ func(string, string, uint32) error = winio.CreateDiffVhd

	_ func(string, VirtualDiskAccessMask, CreateVirtualDiskFlag, *CreateVirtualDiskParameters) (syscall.Handle, error)                   = CreateVirtualDisk
	_ func(string, winio.VirtualDiskAccessMask, winio.CreateVirtualDiskFlag, *winio.CreateVirtualDiskParameters) (syscall.Handle, error) = winio.CreateVirtualDisk

	_ func(string, VirtualDiskAccessMask, VirtualDiskFlag) (syscall.Handle, error)             = OpenVirtualDisk
	_ func(string, winio.VirtualDiskAccessMask, winio.VirtualDiskFlag) (syscall.Handle, error) = winio.OpenVirtualDisk

	_ func(string, VirtualDiskAccessMask, VirtualDiskFlag, *OpenVirtualDiskParameters) (syscall.Handle, error)                   = OpenVirtualDiskWithParameters
	_ func(string, winio.VirtualDiskAccessMask, winio.VirtualDiskFlag, *winio.OpenVirtualDiskParameters) (syscall.Handle, error) = winio.OpenVirtualDiskWithParameters

	_ func(syscall.Handle, AttachVirtualDiskFlag, *AttachVirtualDiskParameters) error             = AttachVirtualDisk
	_ func(syscall.Handle, winio.AttachVirtualDiskFlag, *winio.AttachVirtualDiskParameters) error = winio.AttachVirtualDisk

	_ func(string) error = AttachVhd
	_ func(string) error = winio.AttachVhd

	_ func(syscall.Handle) error = DetachVirtualDisk
	_ func(syscall.Handle) error = winio.DetachVirtualDisk

	_ func(string) error = DetachVhd
	_ func(string) error = winio.DetachVhd

	_ func(syscall.Handle) (string, error) = GetVirtualDiskPhysicalPath
	_ func(syscall.Handle) (string, error) = winio.GetVirtualDiskPhysicalPath

	_ func(string) (guid.GUID, error) = GetVirtualDiskIdentifier
	_ func(string) (guid.GUID, error) = winio.GetVirtualDiskIdentifier

	_ func(string, guid.GUID) error = SetVirtualDiskIdentifier
	_ func(string, guid.GUID) error = winio.SetVirtualDiskIdentifier
)

// TestWinioShapes compares each function's type with go-winio's through
// reflection: same parameter and result kinds, and for named types the
// same name, size and (for structs) field names, offsets and types.
func TestWinioShapes(t *testing.T) {
	pairs := []struct {
		name       string
		ours, them any
	}{
		{"CreateVhdx", CreateVhdx, winio.CreateVhdx},
		{"CreateDiffVhd", CreateDiffVhd, winio.CreateDiffVhd},
		{"CreateVirtualDisk", CreateVirtualDisk, winio.CreateVirtualDisk},
		{"OpenVirtualDisk", OpenVirtualDisk, winio.OpenVirtualDisk},
		{"OpenVirtualDiskWithParameters", OpenVirtualDiskWithParameters, winio.OpenVirtualDiskWithParameters},
		{"AttachVirtualDisk", AttachVirtualDisk, winio.AttachVirtualDisk},
		{"AttachVhd", AttachVhd, winio.AttachVhd},
		{"DetachVirtualDisk", DetachVirtualDisk, winio.DetachVirtualDisk},
		{"DetachVhd", DetachVhd, winio.DetachVhd},
		{"GetVirtualDiskPhysicalPath", GetVirtualDiskPhysicalPath, winio.GetVirtualDiskPhysicalPath},
		{"GetVirtualDiskIdentifier", GetVirtualDiskIdentifier, winio.GetVirtualDiskIdentifier},
		{"SetVirtualDiskIdentifier", SetVirtualDiskIdentifier, winio.SetVirtualDiskIdentifier},
		// Types used only inside others' fields.
		{"VirtualStorageType", VirtualStorageType{}, winio.VirtualStorageType{}},
		{"CreateVersion2", CreateVersion2{}, winio.CreateVersion2{}},
		{"OpenVersion2", OpenVersion2{}, winio.OpenVersion2{}},
		{"AttachVersion2", AttachVersion2{}, winio.AttachVersion2{}},
		{"DetachVirtualDiskFlag", DetachVirtualDiskFlagNone, winio.DetachVirtualDiskFlagNone},
	}
	for _, p := range pairs {
		if err := sameShape(reflect.TypeOf(p.ours), reflect.TypeOf(p.them)); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
}

// sameShape reports how a and b differ, comparing named types of this
// package with go-winio's by name and layout.
func sameShape(a, b reflect.Type) error {
	if a.Kind() != b.Kind() || a.Size() != b.Size() {
		return errors.New(a.String() + " vs " + b.String() + ": kind or size differs")
	}
	if a.Name() != b.Name() {
		return errors.New(a.String() + " vs " + b.String() + ": name differs")
	}
	if a.PkgPath() != b.PkgPath() && !(strings.HasSuffix(a.PkgPath(), "vhdkit/vhd") &&
		strings.HasSuffix(b.PkgPath(), "go-winio/vhd")) {
		return errors.New(a.String() + " vs " + b.String() + ": package differs")
	}
	switch a.Kind() {
	case reflect.Func:
		if a.NumIn() != b.NumIn() || a.NumOut() != b.NumOut() || a.IsVariadic() != b.IsVariadic() {
			return errors.New(a.String() + " vs " + b.String() + ": arity differs")
		}
		for i := range a.NumIn() {
			if err := sameShape(a.In(i), b.In(i)); err != nil {
				return err
			}
		}
		for i := range a.NumOut() {
			if err := sameShape(a.Out(i), b.Out(i)); err != nil {
				return err
			}
		}
	case reflect.Pointer, reflect.Slice:
		return sameShape(a.Elem(), b.Elem())
	case reflect.Array:
		if a.Len() != b.Len() {
			return errors.New(a.String() + " vs " + b.String() + ": length differs")
		}
		return sameShape(a.Elem(), b.Elem())
	case reflect.Struct:
		if a.NumField() != b.NumField() {
			return errors.New(a.String() + " vs " + b.String() + ": field count differs")
		}
		for i := range a.NumField() {
			fa, fb := a.Field(i), b.Field(i)
			if fa.Name != fb.Name || fa.Offset != fb.Offset {
				return errors.New(a.String() + "." + fa.Name + " vs " + fb.Name + ": name or offset differs")
			}
			if err := sameShape(fa.Type, fb.Type); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestWinioConstants compares every exported constant with go-winio's.
func TestWinioConstants(t *testing.T) {
	tests := []struct {
		name       string
		ours, them uint32
	}{
		{"VIRTUAL_STORAGE_TYPE_DEVICE_VHDX", VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, winio.VIRTUAL_STORAGE_TYPE_DEVICE_VHDX},
		{"VirtualDiskAccessNone", uint32(VirtualDiskAccessNone), uint32(winio.VirtualDiskAccessNone)},
		{"VirtualDiskAccessAttachRO", uint32(VirtualDiskAccessAttachRO), uint32(winio.VirtualDiskAccessAttachRO)},
		{"VirtualDiskAccessAttachRW", uint32(VirtualDiskAccessAttachRW), uint32(winio.VirtualDiskAccessAttachRW)},
		{"VirtualDiskAccessDetach", uint32(VirtualDiskAccessDetach), uint32(winio.VirtualDiskAccessDetach)},
		{"VirtualDiskAccessGetInfo", uint32(VirtualDiskAccessGetInfo), uint32(winio.VirtualDiskAccessGetInfo)},
		{"VirtualDiskAccessCreate", uint32(VirtualDiskAccessCreate), uint32(winio.VirtualDiskAccessCreate)},
		{"VirtualDiskAccessMetaOps", uint32(VirtualDiskAccessMetaOps), uint32(winio.VirtualDiskAccessMetaOps)},
		{"VirtualDiskAccessRead", uint32(VirtualDiskAccessRead), uint32(winio.VirtualDiskAccessRead)},
		{"VirtualDiskAccessAll", uint32(VirtualDiskAccessAll), uint32(winio.VirtualDiskAccessAll)},
		{"VirtualDiskAccessWritable", uint32(VirtualDiskAccessWritable), uint32(winio.VirtualDiskAccessWritable)},
		{"CreateVirtualDiskFlagNone", uint32(CreateVirtualDiskFlagNone), uint32(winio.CreateVirtualDiskFlagNone)},
		{"CreateVirtualDiskFlagFullPhysicalAllocation", uint32(CreateVirtualDiskFlagFullPhysicalAllocation), uint32(winio.CreateVirtualDiskFlagFullPhysicalAllocation)},
		{"CreateVirtualDiskFlagPreventWritesToSourceDisk", uint32(CreateVirtualDiskFlagPreventWritesToSourceDisk), uint32(winio.CreateVirtualDiskFlagPreventWritesToSourceDisk)},
		{"CreateVirtualDiskFlagDoNotCopyMetadataFromParent", uint32(CreateVirtualDiskFlagDoNotCopyMetadataFromParent), uint32(winio.CreateVirtualDiskFlagDoNotCopyMetadataFromParent)},
		{"CreateVirtualDiskFlagCreateBackingStorage", uint32(CreateVirtualDiskFlagCreateBackingStorage), uint32(winio.CreateVirtualDiskFlagCreateBackingStorage)},
		{"CreateVirtualDiskFlagUseChangeTrackingSourceLimit", uint32(CreateVirtualDiskFlagUseChangeTrackingSourceLimit), uint32(winio.CreateVirtualDiskFlagUseChangeTrackingSourceLimit)},
		{"CreateVirtualDiskFlagPreserveParentChangeTrackingState", uint32(CreateVirtualDiskFlagPreserveParentChangeTrackingState), uint32(winio.CreateVirtualDiskFlagPreserveParentChangeTrackingState)},
		{"CreateVirtualDiskFlagVhdSetUseOriginalBackingStorage", uint32(CreateVirtualDiskFlagVhdSetUseOriginalBackingStorage), uint32(winio.CreateVirtualDiskFlagVhdSetUseOriginalBackingStorage)},
		{"CreateVirtualDiskFlagSparseFile", uint32(CreateVirtualDiskFlagSparseFile), uint32(winio.CreateVirtualDiskFlagSparseFile)},
		{"CreateVirtualDiskFlagPmemCompatible", uint32(CreateVirtualDiskFlagPmemCompatible), uint32(winio.CreateVirtualDiskFlagPmemCompatible)},
		{"CreateVirtualDiskFlagSupportCompressedVolumes", uint32(CreateVirtualDiskFlagSupportCompressedVolumes), uint32(winio.CreateVirtualDiskFlagSupportCompressedVolumes)},
		{"OpenVirtualDiskFlagNone", uint32(OpenVirtualDiskFlagNone), uint32(winio.OpenVirtualDiskFlagNone)},
		{"OpenVirtualDiskFlagNoParents", uint32(OpenVirtualDiskFlagNoParents), uint32(winio.OpenVirtualDiskFlagNoParents)},
		{"OpenVirtualDiskFlagBlankFile", uint32(OpenVirtualDiskFlagBlankFile), uint32(winio.OpenVirtualDiskFlagBlankFile)},
		{"OpenVirtualDiskFlagBootDrive", uint32(OpenVirtualDiskFlagBootDrive), uint32(winio.OpenVirtualDiskFlagBootDrive)},
		{"OpenVirtualDiskFlagCachedIO", uint32(OpenVirtualDiskFlagCachedIO), uint32(winio.OpenVirtualDiskFlagCachedIO)},
		{"OpenVirtualDiskFlagCustomDiffChain", uint32(OpenVirtualDiskFlagCustomDiffChain), uint32(winio.OpenVirtualDiskFlagCustomDiffChain)},
		{"OpenVirtualDiskFlagParentCachedIO", uint32(OpenVirtualDiskFlagParentCachedIO), uint32(winio.OpenVirtualDiskFlagParentCachedIO)},
		{"OpenVirtualDiskFlagVhdsetFileOnly", uint32(OpenVirtualDiskFlagVhdsetFileOnly), uint32(winio.OpenVirtualDiskFlagVhdsetFileOnly)},
		{"OpenVirtualDiskFlagIgnoreRelativeParentLocator", uint32(OpenVirtualDiskFlagIgnoreRelativeParentLocator), uint32(winio.OpenVirtualDiskFlagIgnoreRelativeParentLocator)},
		{"OpenVirtualDiskFlagNoWriteHardening", uint32(OpenVirtualDiskFlagNoWriteHardening), uint32(winio.OpenVirtualDiskFlagNoWriteHardening)},
		{"OpenVirtualDiskFlagSupportCompressedVolumes", uint32(OpenVirtualDiskFlagSupportCompressedVolumes), uint32(winio.OpenVirtualDiskFlagSupportCompressedVolumes)},
		{"AttachVirtualDiskFlagNone", uint32(AttachVirtualDiskFlagNone), uint32(winio.AttachVirtualDiskFlagNone)},
		{"AttachVirtualDiskFlagReadOnly", uint32(AttachVirtualDiskFlagReadOnly), uint32(winio.AttachVirtualDiskFlagReadOnly)},
		{"AttachVirtualDiskFlagNoDriveLetter", uint32(AttachVirtualDiskFlagNoDriveLetter), uint32(winio.AttachVirtualDiskFlagNoDriveLetter)},
		{"AttachVirtualDiskFlagPermanentLifetime", uint32(AttachVirtualDiskFlagPermanentLifetime), uint32(winio.AttachVirtualDiskFlagPermanentLifetime)},
		{"AttachVirtualDiskFlagNoLocalHost", uint32(AttachVirtualDiskFlagNoLocalHost), uint32(winio.AttachVirtualDiskFlagNoLocalHost)},
		{"AttachVirtualDiskFlagNoSecurityDescriptor", uint32(AttachVirtualDiskFlagNoSecurityDescriptor), uint32(winio.AttachVirtualDiskFlagNoSecurityDescriptor)},
		{"AttachVirtualDiskFlagBypassDefaultEncryptionPolicy", uint32(AttachVirtualDiskFlagBypassDefaultEncryptionPolicy), uint32(winio.AttachVirtualDiskFlagBypassDefaultEncryptionPolicy)},
		{"AttachVirtualDiskFlagNonPnp", uint32(AttachVirtualDiskFlagNonPnp), uint32(winio.AttachVirtualDiskFlagNonPnp)},
		{"AttachVirtualDiskFlagRestrictedRange", uint32(AttachVirtualDiskFlagRestrictedRange), uint32(winio.AttachVirtualDiskFlagRestrictedRange)},
		{"AttachVirtualDiskFlagSinglePartition", uint32(AttachVirtualDiskFlagSinglePartition), uint32(winio.AttachVirtualDiskFlagSinglePartition)},
		{"AttachVirtualDiskFlagRegisterVolume", uint32(AttachVirtualDiskFlagRegisterVolume), uint32(winio.AttachVirtualDiskFlagRegisterVolume)},
		{"DetachVirtualDiskFlagNone", uint32(DetachVirtualDiskFlagNone), uint32(winio.DetachVirtualDiskFlagNone)},
	}
	for _, tt := range tests {
		if tt.ours != tt.them {
			t.Errorf("%s = %#x, go-winio has %#x", tt.name, tt.ours, tt.them)
		}
	}
}

// TestIdentifierWindows creates a VHDX and a VHD through VirtDisk, the
// VHDX under a name with an upper-case extension that go-winio's suffix
// test misread, and sets and reads back their identifiers.
func TestIdentifierWindows(t *testing.T) {
	if err := windows.NewLazySystemDLL("virtdisk.dll").Load(); err != nil {
		t.Skipf("virtdisk.dll not available: %v", err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		bs   uint32
	}{{"UPPER.VHDX", 1}, {"disk.vhd", 0}} {
		name := c.name
		path := filepath.Join(dir, name)
		if err := CreateVhdx(path, 1, c.bs); err != nil {
			t.Fatalf("CreateVhdx(%s): %v", name, err)
		}
		want := guid.GUID{Data1: 0x12345678, Data2: 0x9abc, Data3: 0xdef0,
			Data4: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
		if err := SetVirtualDiskIdentifier(path, want); err != nil {
			t.Fatalf("SetVirtualDiskIdentifier(%s): %v", name, err)
		}
		got, err := GetVirtualDiskIdentifier(path)
		if err != nil {
			t.Fatalf("GetVirtualDiskIdentifier(%s): %v", name, err)
		}
		if got != want {
			t.Errorf("%s: identifier %v, want %v", name, got, want)
		}
		d, err := Open(path, &OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatalf("Open(%s): %v", name, err)
		}
		if id := d.Info().ID; !strings.EqualFold(id, want.String()) {
			t.Errorf("%s: our Info().ID = %s, want %v", name, id, want)
		}
		d.Close()
		os.Remove(path)
	}
}

// TestBlockSizeOverflow checks that a block size that does not fit in
// 32 bits is refused instead of wrapping to 0 ("default") as in
// go-winio.
func TestBlockSizeOverflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.vhdx")
	err := CreateVhdx(path, 1, 4096)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("CreateVhdx(block 4096 MiB) = %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file created despite the error: %v", err)
	}
}

// TestAttachVhdLasts checks the fix of go-winio's AttachVhd, whose
// attach ended as it returned: after AttachVhd the disk still has a
// physical path, until DetachVhd.
func TestAttachVhdLasts(t *testing.T) {
	if err := windows.NewLazySystemDLL("virtdisk.dll").Load(); err != nil {
		t.Skipf("virtdisk.dll not available: %v", err)
	}
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("attaching needs an elevated process")
	}
	path := filepath.Join(t.TempDir(), "attach.vhdx")
	if err := CreateVhdx(path, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := AttachVhd(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DetachVhd(path) })
	h, err := OpenVirtualDisk(path, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseHandle(h)
	dev, err := GetVirtualDiskPhysicalPath(h)
	if err != nil {
		t.Fatalf("no physical path after AttachVhd returned: %v", err)
	}
	if !strings.HasPrefix(dev, `\\.\PhysicalDrive`) {
		t.Errorf("physical path %q", dev)
	}
	if err := DetachVhd(path); err != nil {
		t.Fatal(err)
	}
}
