package vhd

// This file declares the types and constants of the go-winio-compatible
// API (github.com/Microsoft/go-winio/vhd v0.6.4): same names, values and
// struct layouts, on every operating system. The functions live in
// winio_windows.go (over package virtdisk) and winio_other.go (pure Go on
// this module's engine).

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unsafe"

	"github.com/Microsoft/go-winio/pkg/guid"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Flag and mask types of the go-winio-compatible API. Their values are
// those of the VirtDisk SDK (virtdisk.h).
type (
	// CreateVirtualDiskFlag is CREATE_VIRTUAL_DISK_FLAG.
	CreateVirtualDiskFlag uint32
	// VirtualDiskFlag is OPEN_VIRTUAL_DISK_FLAG.
	VirtualDiskFlag uint32
	// AttachVirtualDiskFlag is ATTACH_VIRTUAL_DISK_FLAG.
	AttachVirtualDiskFlag uint32
	// DetachVirtualDiskFlag is DETACH_VIRTUAL_DISK_FLAG.
	DetachVirtualDiskFlag uint32
	// VirtualDiskAccessMask is VIRTUAL_DISK_ACCESS_MASK.
	VirtualDiskAccessMask uint32
)

// VirtualStorageType is VIRTUAL_STORAGE_TYPE: a device type
// (VIRTUAL_STORAGE_TYPE_DEVICE_*) and a vendor GUID. The zero value lets
// the system pick the format from the file name extension.
type VirtualStorageType struct {
	DeviceID uint32
	VendorID guid.GUID
}

// CreateVersion2 is the Version2 member of
// CREATE_VIRTUAL_DISK_PARAMETERS. Zero sizes take the defaults; a
// non-nil ParentPath (NUL-terminated UTF-16) makes a differencing disk.
type CreateVersion2 struct {
	UniqueID                 guid.GUID
	MaximumSize              uint64
	BlockSizeInBytes         uint32
	SectorSizeInBytes        uint32
	PhysicalSectorSizeInByte uint32
	ParentPath               *uint16 // NUL-terminated UTF-16
	SourcePath               *uint16 // NUL-terminated UTF-16
	OpenFlags                uint32
	ParentVirtualStorageType VirtualStorageType
	SourceVirtualStorageType VirtualStorageType
	ResiliencyGUID           guid.GUID
}

// CreateVirtualDiskParameters is CREATE_VIRTUAL_DISK_PARAMETERS; only
// Version 2 is supported.
type CreateVirtualDiskParameters struct {
	Version  uint32 // must be 2
	Version2 CreateVersion2
}

// OpenVersion2 is the Version2 member of OPEN_VIRTUAL_DISK_PARAMETERS,
// with Go bools where the SDK has 4-byte BOOLs; the functions translate.
type OpenVersion2 struct {
	GetInfoOnly    bool
	ReadOnly       bool
	ResiliencyGUID guid.GUID
}

// OpenVirtualDiskParameters is OPEN_VIRTUAL_DISK_PARAMETERS; only
// Version 2 is supported.
type OpenVirtualDiskParameters struct {
	Version  uint32 // must be 2
	Version2 OpenVersion2
}

// AttachVersion2 is the Version2 member of
// ATTACH_VIRTUAL_DISK_PARAMETERS: the byte range exposed when
// AttachVirtualDiskFlagRestrictedRange is set.
type AttachVersion2 struct {
	RestrictedOffset uint64
	RestrictedLength uint64
}

// AttachVirtualDiskParameters is ATTACH_VIRTUAL_DISK_PARAMETERS
// (Version 1 or 2).
type AttachVirtualDiskParameters struct {
	Version  uint32
	Version2 AttachVersion2
}

// VirtDisk constants, with the SDK's values.
const (
	// VIRTUAL_STORAGE_TYPE_DEVICE_VHDX is the VirtualStorageType
	// DeviceID of VHDX files.
	//
	//revive:disable-next-line:var-naming SDK spelling
	VIRTUAL_STORAGE_TYPE_DEVICE_VHDX = 0x3

	// Access masks for opening a disk.
	VirtualDiskAccessNone     VirtualDiskAccessMask = 0x00000000
	VirtualDiskAccessAttachRO VirtualDiskAccessMask = 0x00010000
	VirtualDiskAccessAttachRW VirtualDiskAccessMask = 0x00020000
	VirtualDiskAccessDetach   VirtualDiskAccessMask = 0x00040000
	VirtualDiskAccessGetInfo  VirtualDiskAccessMask = 0x00080000
	VirtualDiskAccessCreate   VirtualDiskAccessMask = 0x00100000
	VirtualDiskAccessMetaOps  VirtualDiskAccessMask = 0x00200000
	VirtualDiskAccessRead     VirtualDiskAccessMask = 0x000d0000
	VirtualDiskAccessAll      VirtualDiskAccessMask = 0x003f0000
	VirtualDiskAccessWritable VirtualDiskAccessMask = 0x00320000

	// Flags for creating a disk.
	CreateVirtualDiskFlagNone                              CreateVirtualDiskFlag = 0x0
	CreateVirtualDiskFlagFullPhysicalAllocation            CreateVirtualDiskFlag = 0x1
	CreateVirtualDiskFlagPreventWritesToSourceDisk         CreateVirtualDiskFlag = 0x2
	CreateVirtualDiskFlagDoNotCopyMetadataFromParent       CreateVirtualDiskFlag = 0x4
	CreateVirtualDiskFlagCreateBackingStorage              CreateVirtualDiskFlag = 0x8
	CreateVirtualDiskFlagUseChangeTrackingSourceLimit      CreateVirtualDiskFlag = 0x10
	CreateVirtualDiskFlagPreserveParentChangeTrackingState CreateVirtualDiskFlag = 0x20
	CreateVirtualDiskFlagVhdSetUseOriginalBackingStorage   CreateVirtualDiskFlag = 0x40
	CreateVirtualDiskFlagSparseFile                        CreateVirtualDiskFlag = 0x80
	CreateVirtualDiskFlagPmemCompatible                    CreateVirtualDiskFlag = 0x100
	CreateVirtualDiskFlagSupportCompressedVolumes          CreateVirtualDiskFlag = 0x200

	// Flags for opening a disk.
	OpenVirtualDiskFlagNone                        VirtualDiskFlag = 0x00000000
	OpenVirtualDiskFlagNoParents                   VirtualDiskFlag = 0x00000001
	OpenVirtualDiskFlagBlankFile                   VirtualDiskFlag = 0x00000002
	OpenVirtualDiskFlagBootDrive                   VirtualDiskFlag = 0x00000004
	OpenVirtualDiskFlagCachedIO                    VirtualDiskFlag = 0x00000008
	OpenVirtualDiskFlagCustomDiffChain             VirtualDiskFlag = 0x00000010
	OpenVirtualDiskFlagParentCachedIO              VirtualDiskFlag = 0x00000020
	OpenVirtualDiskFlagVhdsetFileOnly              VirtualDiskFlag = 0x00000040
	OpenVirtualDiskFlagIgnoreRelativeParentLocator VirtualDiskFlag = 0x00000080
	OpenVirtualDiskFlagNoWriteHardening            VirtualDiskFlag = 0x00000100
	OpenVirtualDiskFlagSupportCompressedVolumes    VirtualDiskFlag = 0x00000200

	// Flags for attaching a disk.
	AttachVirtualDiskFlagNone                          AttachVirtualDiskFlag = 0x00000000
	AttachVirtualDiskFlagReadOnly                      AttachVirtualDiskFlag = 0x00000001
	AttachVirtualDiskFlagNoDriveLetter                 AttachVirtualDiskFlag = 0x00000002
	AttachVirtualDiskFlagPermanentLifetime             AttachVirtualDiskFlag = 0x00000004
	AttachVirtualDiskFlagNoLocalHost                   AttachVirtualDiskFlag = 0x00000008
	AttachVirtualDiskFlagNoSecurityDescriptor          AttachVirtualDiskFlag = 0x00000010
	AttachVirtualDiskFlagBypassDefaultEncryptionPolicy AttachVirtualDiskFlag = 0x00000020
	AttachVirtualDiskFlagNonPnp                        AttachVirtualDiskFlag = 0x00000040
	AttachVirtualDiskFlagRestrictedRange               AttachVirtualDiskFlag = 0x00000080
	AttachVirtualDiskFlagSinglePartition               AttachVirtualDiskFlag = 0x00000100
	AttachVirtualDiskFlagRegisterVolume                AttachVirtualDiskFlag = 0x00000200

	// Flags for detaching a disk.
	DetachVirtualDiskFlagNone DetachVirtualDiskFlag = 0x0
)

// winioMiB and winioGiB convert the helper functions' size arguments.
const (
	winioMiB = 1 << 20
	winioGiB = 1 << 30
)

// blockSizeBytes converts a block size in MiB to bytes. It computes in 64
// bits and rejects sizes that do not fit the SDK's 32-bit field (go-winio
// multiplied in uint32 and silently wrapped, e.g. 4096 MiB became 0,
// which means "default").
func blockSizeBytes(mb uint32) (uint32, error) {
	b := uint64(mb) * winioMiB
	if b > 1<<32-1 {
		return 0, fmt.Errorf("%w: block size %d MiB does not fit in 32 bits",
			vdisk.ErrInvalidArgument, mb)
	}
	return uint32(b), nil
}

// errNoParameters reports a nil parameters pointer where VirtDisk needs
// one (go-winio dereferenced it and panicked).
var errNoParameters = fmt.Errorf("%w: parameters are required", vdisk.ErrInvalidArgument)

// checkVersion2 rejects parameter versions other than 2, the only one the
// go-winio API supports for create and open.
func checkVersion2(v uint32) error {
	if v != 2 {
		return fmt.Errorf("%w: only version 2 parameters are supported, got %d",
			vdisk.ErrInvalidArgument, v)
	}
	return nil
}

// utf16Ptr encodes s as a NUL-terminated UTF-16 string, as Windows'
// StringToUTF16Ptr does (without its NUL check: a NUL ends the string).
func utf16Ptr(s string) *uint16 {
	u := append(utf16.Encode([]rune(s)), 0)
	return &u[0]
}

// maxUTF16Path bounds the decoding of a caller's UTF-16 string: Windows
// paths are at most 32767 units long.
const maxUTF16Path = 32767

// utf16PtrToString decodes a NUL-terminated UTF-16 string; nil gives "".
// It stops after maxUTF16Path units if no NUL comes. It is used by the
// non-Windows CreateVirtualDisk, and by tests.
func utf16PtrToString(p *uint16) string {
	if p == nil {
		return ""
	}
	var u []uint16
	q := unsafe.Pointer(p)
	for len(u) < maxUTF16Path && *(*uint16)(q) != 0 {
		u = append(u, *(*uint16)(q))
		q = unsafe.Add(q, 2)
	}
	return string(utf16.Decode(u))
}

// formatByExtension is VirtDisk's rule when the storage type is left
// unknown (as every go-winio helper does): ".vhd" makes a VHD, ".vhdx" a
// VHDX, case-insensitively. Other names get VHDX here; Windows refuses
// them.
func formatByExtension(path string) vdisk.Format {
	if strings.HasSuffix(strings.ToLower(path), ".vhd") {
		return vdisk.FormatVHD
	}
	return vdisk.FormatVHDX
}

// CreateVhdx creates a dynamic disk of maxSizeInGb GiB with blocks of
// blockSizeInMb MiB (0 for the format's default) at path. As VirtDisk
// does for go-winio's call, the format follows the extension: ".vhd"
// (any case) makes a VHD, anything else a VHDX. On Windows VirtDisk
// creates the disk; elsewhere this package's engine does.
func CreateVhdx(path string, maxSizeInGb, blockSizeInMb uint32) error {
	bs, err := blockSizeBytes(blockSizeInMb)
	if err != nil {
		return fmt.Errorf("vhd: create %s: %w", path, err)
	}
	p := CreateVirtualDiskParameters{
		Version: 2,
		Version2: CreateVersion2{
			MaximumSize:      uint64(maxSizeInGb) * winioGiB,
			BlockSizeInBytes: bs,
		},
	}
	h, err := CreateVirtualDisk(path, VirtualDiskAccessNone, CreateVirtualDiskFlagNone, &p)
	if err != nil {
		return err
	}
	return CloseHandle(h)
}
