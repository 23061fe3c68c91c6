//go:build !windows

package virtdisk

import "errors"

// Handle stands for a VirtDisk handle; no function returns one off
// Windows.
type Handle uintptr

// errNoVirtDisk is returned by every function off Windows.
var errNoVirtDisk = errors.New("virtdisk: VirtDisk is only available on Windows")

func unsupported(op string) error {
	return &Error{Op: op, Err: errors.Join(errNoVirtDisk, errors.ErrUnsupported)}
}

// CreateVirtualDisk returns an error wrapping [errors.ErrUnsupported].
func CreateVirtualDisk(st *VirtualStorageType, path string, access, flags uint32, p *CreateParameters) (Handle, error) {
	return 0, unsupported("CreateVirtualDisk")
}

// OpenVirtualDisk returns an error wrapping [errors.ErrUnsupported].
func OpenVirtualDisk(st *VirtualStorageType, path string, access, flags uint32, p *OpenParameters) (Handle, error) {
	return 0, unsupported("OpenVirtualDisk")
}

// AttachVirtualDisk returns an error wrapping [errors.ErrUnsupported].
func AttachVirtualDisk(h Handle, flags uint32, p *AttachParameters) error {
	return unsupported("AttachVirtualDisk")
}

// DetachVirtualDisk returns an error wrapping [errors.ErrUnsupported].
func DetachVirtualDisk(h Handle, flags uint32) error {
	return unsupported("DetachVirtualDisk")
}

// GetVirtualDiskPhysicalPath returns an error wrapping
// [errors.ErrUnsupported].
func GetVirtualDiskPhysicalPath(h Handle) (string, error) {
	return "", unsupported("GetVirtualDiskPhysicalPath")
}

// GetVirtualDiskInformation returns an error wrapping
// [errors.ErrUnsupported].
func GetVirtualDiskInformation(h Handle, info *Info) error {
	return unsupported("GetVirtualDiskInformation")
}

// SetVirtualDiskInformation returns an error wrapping
// [errors.ErrUnsupported].
func SetVirtualDiskInformation(h Handle, info *Info) error {
	return unsupported("SetVirtualDiskInformation")
}

// CloseHandle returns an error wrapping [errors.ErrUnsupported].
func CloseHandle(h Handle) error {
	return unsupported("CloseHandle")
}
