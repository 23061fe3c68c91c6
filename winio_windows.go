package vhd

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/Microsoft/go-winio/pkg/guid"

	"github.com/vhdkit/vhd/internal/vdisk"
	"github.com/vhdkit/vhd/virtdisk"
)

// Handle is a VirtDisk handle as returned by [OpenVirtualDisk] and
// [CreateVirtualDisk]. On Windows it is syscall.Handle, so code written
// for go-winio's vhd package compiles unchanged.
type Handle = syscall.Handle

// CloseHandle closes a handle returned by [OpenVirtualDisk],
// [OpenVirtualDiskWithParameters] or [CreateVirtualDisk]. On Windows it
// is syscall.CloseHandle.
func CloseHandle(h Handle) error {
	return virtdisk.CloseHandle(h)
}

// CreateDiffVhd creates at diffVhdPath a differencing disk whose parent
// is baseVhdPath, with blocks of blockSizeInMB MiB (0 for the default).
// The format follows diffVhdPath's extension, as in [CreateVhdx].
func CreateDiffVhd(diffVhdPath, baseVhdPath string, blockSizeInMB uint32) error {
	bs, err := blockSizeBytes(blockSizeInMB)
	if err != nil {
		return fmt.Errorf("vhd: create %s: %w", diffVhdPath, err)
	}
	parent, err := syscall.UTF16PtrFromString(baseVhdPath)
	if err != nil {
		return fmt.Errorf("vhd: create %s: parent path: %w", diffVhdPath, err)
	}
	p := &CreateVirtualDiskParameters{
		Version: 2,
		Version2: CreateVersion2{
			ParentPath:       parent,
			BlockSizeInBytes: bs,
			OpenFlags:        uint32(OpenVirtualDiskFlagCachedIO),
		},
	}
	h, err := CreateVirtualDisk(diffVhdPath, VirtualDiskAccessNone, CreateVirtualDiskFlagNone, p)
	if err != nil {
		return err
	}
	if err := CloseHandle(h); err != nil {
		return fmt.Errorf("vhd: create %s: close handle: %w", diffVhdPath, err)
	}
	return nil
}

// CreateVirtualDisk creates a disk as described by parameters (Version
// 2 only) and returns a handle to it.
func CreateVirtualDisk(path string, virtualDiskAccessMask VirtualDiskAccessMask, createVirtualDiskFlags CreateVirtualDiskFlag, parameters *CreateVirtualDiskParameters) (syscall.Handle, error) {
	if parameters == nil {
		return 0, fmt.Errorf("vhd: create %s: %w", path, errNoParameters)
	}
	if err := checkVersion2(parameters.Version); err != nil {
		return 0, fmt.Errorf("vhd: create %s: %w", path, err)
	}
	var st virtdisk.VirtualStorageType
	v := &parameters.Version2
	p := virtdisk.CreateParameters{
		Version: 2,
		Version2: virtdisk.CreateVersion2{
			UniqueID:                  v.UniqueID,
			MaximumSize:               v.MaximumSize,
			BlockSizeInBytes:          v.BlockSizeInBytes,
			SectorSizeInBytes:         v.SectorSizeInBytes,
			PhysicalSectorSizeInBytes: v.PhysicalSectorSizeInByte,
			ParentPath:                v.ParentPath,
			SourcePath:                v.SourcePath,
			OpenFlags:                 v.OpenFlags,
			ParentVirtualStorageType:  virtdisk.VirtualStorageType(v.ParentVirtualStorageType),
			SourceVirtualStorageType:  virtdisk.VirtualStorageType(v.SourceVirtualStorageType),
			ResiliencyGUID:            v.ResiliencyGUID,
		},
	}
	h, err := virtdisk.CreateVirtualDisk(&st, path, uint32(virtualDiskAccessMask), uint32(createVirtualDiskFlags), &p)
	if err != nil {
		return 0, fmt.Errorf("vhd: create %s: %w", path, err)
	}
	return h, nil
}

// OpenVirtualDisk opens the disk at vhdPath with Version 2 parameters
// and returns a handle to it.
func OpenVirtualDisk(vhdPath string, virtualDiskAccessMask VirtualDiskAccessMask, openVirtualDiskFlags VirtualDiskFlag) (syscall.Handle, error) {
	p := OpenVirtualDiskParameters{Version: 2}
	return OpenVirtualDiskWithParameters(vhdPath, virtualDiskAccessMask, openVirtualDiskFlags, &p)
}

// OpenVirtualDiskWithParameters opens the disk at vhdPath with the given
// Version 2 parameters and returns a handle to it.
func OpenVirtualDiskWithParameters(vhdPath string, virtualDiskAccessMask VirtualDiskAccessMask, openVirtualDiskFlags VirtualDiskFlag, parameters *OpenVirtualDiskParameters) (syscall.Handle, error) {
	if parameters == nil {
		return 0, fmt.Errorf("vhd: open %s: %w", vhdPath, errNoParameters)
	}
	if err := checkVersion2(parameters.Version); err != nil {
		return 0, fmt.Errorf("vhd: open %s: %w", vhdPath, err)
	}
	var st virtdisk.VirtualStorageType
	p := virtdisk.OpenParameters{
		Version: 2,
		Version2: virtdisk.OpenVersion2{
			GetInfoOnly:    winBool(parameters.Version2.GetInfoOnly),
			ReadOnly:       winBool(parameters.Version2.ReadOnly),
			ResiliencyGUID: parameters.Version2.ResiliencyGUID,
		},
	}
	h, err := virtdisk.OpenVirtualDisk(&st, vhdPath, uint32(virtualDiskAccessMask), uint32(openVirtualDiskFlags), &p)
	if err != nil {
		return 0, fmt.Errorf("vhd: open %s: %w", vhdPath, err)
	}
	return h, nil
}

// AttachVirtualDisk attaches the disk behind handle. Unless
// attachVirtualDiskFlag has [AttachVirtualDiskFlagPermanentLifetime],
// the attach ends when the last handle to the disk is closed.
func AttachVirtualDisk(handle syscall.Handle, attachVirtualDiskFlag AttachVirtualDiskFlag, parameters *AttachVirtualDiskParameters) error {
	var p *virtdisk.AttachParameters
	if parameters != nil {
		p = &virtdisk.AttachParameters{
			Version:  parameters.Version,
			Version2: virtdisk.AttachVersion2(parameters.Version2),
		}
	}
	if err := virtdisk.AttachVirtualDisk(handle, uint32(attachVirtualDiskFlag), p); err != nil {
		return fmt.Errorf("vhd: attach: %w", err)
	}
	return nil
}

// AttachVhd attaches the disk at path read-write until [DetachVhd] is
// called. go-winio's version closed its only handle without
// ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME, which detached the disk
// again as it returned; this one sets the flag.
func AttachVhd(path string) error {
	h, err := OpenVirtualDisk(path, VirtualDiskAccessNone,
		OpenVirtualDiskFlagCachedIO|OpenVirtualDiskFlagIgnoreRelativeParentLocator)
	if err != nil {
		return err
	}
	p := virtdisk.AttachParameters{Version: 2}
	err = virtdisk.AttachVirtualDisk(h, uint32(AttachVirtualDiskFlagPermanentLifetime), &p)
	if cerr := CloseHandle(h); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vhd: attach %s: %w", path, err)
	}
	return nil
}

// DetachVirtualDisk detaches the disk behind handle.
func DetachVirtualDisk(handle syscall.Handle) error {
	if err := virtdisk.DetachVirtualDisk(handle, uint32(DetachVirtualDiskFlagNone)); err != nil {
		return fmt.Errorf("vhd: detach: %w", err)
	}
	return nil
}

// DetachVhd detaches the disk at path.
func DetachVhd(path string) error {
	h, err := OpenVirtualDisk(path, VirtualDiskAccessNone,
		OpenVirtualDiskFlagCachedIO|OpenVirtualDiskFlagIgnoreRelativeParentLocator)
	if err != nil {
		return err
	}
	err = virtdisk.DetachVirtualDisk(h, uint32(DetachVirtualDiskFlagNone))
	if cerr := CloseHandle(h); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vhd: detach %s: %w", path, err)
	}
	return nil
}

// GetVirtualDiskPhysicalPath returns the device path of the attached
// disk behind handle, of the form \\.\PhysicalDriveN.
func GetVirtualDiskPhysicalPath(handle syscall.Handle) (string, error) {
	s, err := virtdisk.GetVirtualDiskPhysicalPath(handle)
	if err != nil {
		return "", fmt.Errorf("vhd: physical path: %w", err)
	}
	return s, nil
}

// GetVirtualDiskIdentifier returns the identifier of the disk at vhdPath:
// the VHDX Virtual Disk ID or the VHD footer's Unique Id. The format is
// read from the file's signature, not its name.
func GetVirtualDiskIdentifier(vhdPath string) (guid.GUID, error) {
	h, err := OpenVirtualDisk(vhdPath, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
	if err != nil {
		return guid.GUID{}, err
	}
	defer CloseHandle(h) //nolint:errcheck // read-only use
	ver, _, err := identifierVersions(vhdPath, h)
	if err != nil {
		return guid.GUID{}, err
	}
	info := virtdisk.Info{Version: ver}
	if err := virtdisk.GetVirtualDiskInformation(h, &info); err != nil {
		return guid.GUID{}, fmt.Errorf("vhd: identifier of %s: %w", vhdPath, err)
	}
	return info.GUID(), nil
}

// SetVirtualDiskIdentifier sets the identifier of the disk at vhdPath
// (see [GetVirtualDiskIdentifier]).
func SetVirtualDiskIdentifier(vhdPath string, identifier guid.GUID) error {
	h, err := OpenVirtualDisk(vhdPath, VirtualDiskAccessNone, OpenVirtualDiskFlagNone)
	if err != nil {
		return err
	}
	_, ver, err := identifierVersions(vhdPath, h)
	if err == nil {
		info := virtdisk.Info{Version: ver}
		info.SetGUID(identifier)
		err = virtdisk.SetVirtualDiskInformation(h, &info)
	}
	if cerr := CloseHandle(h); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vhd: set identifier of %s: %w", vhdPath, err)
	}
	return nil
}

// identifierVersions returns the GET and SET_VIRTUAL_DISK_INFO versions
// that address the identifier of the disk at path: VirtualDiskId for
// VHDX, Identifier for VHD. The format comes from the file's signature
// ([DetectFile]); go-winio went by a case-sensitive ".vhdx" suffix, which
// misreads "DISK.VHDX" and VHDX files with other names. When the file
// cannot be read beside VirtDisk (sharing), VirtDisk's own record of the
// storage type, through h, decides.
func identifierVersions(path string, h syscall.Handle) (get, set uint32, err error) {
	f, err := DetectFile(path)
	if err != nil {
		info := virtdisk.Info{Version: virtdisk.GetInfoVirtualStorageType}
		if verr := virtdisk.GetVirtualDiskInformation(h, &info); verr != nil {
			return 0, 0, fmt.Errorf("vhd: identifier of %s: %w", path, err)
		}
		switch binary.LittleEndian.Uint32(info.Data[:4]) {
		case virtdisk.StorageTypeDeviceVHDX:
			f = vdisk.FormatVHDX
		case virtdisk.StorageTypeDeviceVHD:
			f = vdisk.FormatVHD
		}
	}
	switch f {
	case vdisk.FormatVHDX:
		return virtdisk.GetInfoVirtualDiskID, virtdisk.SetInfoVirtualDiskID, nil
	case vdisk.FormatVHD:
		return virtdisk.GetInfoIdentifier, virtdisk.SetInfoIdentifier, nil
	}
	return 0, 0, fmt.Errorf("vhd: identifier of %s: %w: neither VHD nor VHDX",
		path, vdisk.ErrUnknownFormat)
}

// winBool converts to a 4-byte Win32 BOOL.
func winBool(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
