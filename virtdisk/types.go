package virtdisk

import "github.com/Microsoft/go-winio/pkg/guid"

// VirtualStorageType is VIRTUAL_STORAGE_TYPE.
type VirtualStorageType struct {
	DeviceID uint32
	VendorID guid.GUID
}

// Device types (VIRTUAL_STORAGE_TYPE_DEVICE_*).
const (
	StorageTypeDeviceUnknown = 0
	StorageTypeDeviceISO     = 1
	StorageTypeDeviceVHD     = 2
	StorageTypeDeviceVHDX    = 3
)

// CreateVersion2 is the Version2 member of
// CREATE_VIRTUAL_DISK_PARAMETERS.
type CreateVersion2 struct {
	UniqueID                  guid.GUID
	MaximumSize               uint64
	BlockSizeInBytes          uint32
	SectorSizeInBytes         uint32
	PhysicalSectorSizeInBytes uint32
	ParentPath                *uint16
	SourcePath                *uint16
	OpenFlags                 uint32
	ParentVirtualStorageType  VirtualStorageType
	SourceVirtualStorageType  VirtualStorageType
	ResiliencyGUID            guid.GUID
}

// CreateParameters is CREATE_VIRTUAL_DISK_PARAMETERS, Version 2.
type CreateParameters struct {
	Version  uint32 // 2
	Version2 CreateVersion2
}

// OpenVersion2 is the Version2 member of OPEN_VIRTUAL_DISK_PARAMETERS;
// the BOOL members are 4 bytes.
type OpenVersion2 struct {
	GetInfoOnly    int32
	ReadOnly       int32
	ResiliencyGUID guid.GUID
}

// OpenParameters is OPEN_VIRTUAL_DISK_PARAMETERS, Version 2.
type OpenParameters struct {
	Version  uint32 // 2
	Version2 OpenVersion2
}

// AttachVersion2 is the Version2 member of
// ATTACH_VIRTUAL_DISK_PARAMETERS.
type AttachVersion2 struct {
	RestrictedOffset uint64
	RestrictedLength uint64
}

// AttachParameters is ATTACH_VIRTUAL_DISK_PARAMETERS, Version 1 or 2.
type AttachParameters struct {
	Version  uint32
	Version2 AttachVersion2
}

// Info is GET_VIRTUAL_DISK_INFO and SET_VIRTUAL_DISK_INFO, which share
// one layout: a 4-byte version selecting the union member, padding, and
// the union. Data is large enough for the fixed-size members; the
// variable-length ones (parent location) are not used by this package.
type Info struct {
	Version uint32
	_       [4]byte
	Data    [24]byte
}

// GET_VIRTUAL_DISK_INFO_VERSION values used with [Info].
const (
	GetInfoIdentifier         = 2
	GetInfoVirtualStorageType = 6 // a VirtualStorageType
	GetInfoVirtualDiskID      = 14
)

// SET_VIRTUAL_DISK_INFO_VERSION values used with [Info].
const (
	SetInfoIdentifier    = 2
	SetInfoVirtualDiskID = 5
)

// GUID returns the union as a GUID (the Identifier and VirtualDiskId
// members), stored in Windows' in-memory layout.
func (i *Info) GUID() guid.GUID {
	return guid.FromWindowsArray([16]byte(i.Data[:16]))
}

// SetGUID stores g in the union's first 16 bytes.
func (i *Info) SetGUID(g guid.GUID) {
	a := g.ToWindowsArray()
	copy(i.Data[:16], a[:])
}
