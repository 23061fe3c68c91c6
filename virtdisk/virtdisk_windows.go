package virtdisk

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

//sys createVirtualDisk(storageType *VirtualStorageType, path *uint16, accessMask uint32, securityDescriptor *uintptr, flags uint32, providerSpecificFlags uint32, parameters *CreateParameters, overlapped *syscall.Overlapped, handle *syscall.Handle) (win32err error) = virtdisk.CreateVirtualDisk
//sys openVirtualDisk(storageType *VirtualStorageType, path *uint16, accessMask uint32, flags uint32, parameters *OpenParameters, handle *syscall.Handle) (win32err error) = virtdisk.OpenVirtualDisk
//sys attachVirtualDisk(handle syscall.Handle, securityDescriptor *uintptr, flags uint32, providerSpecificFlags uint32, parameters *AttachParameters, overlapped *syscall.Overlapped) (win32err error) = virtdisk.AttachVirtualDisk
//sys detachVirtualDisk(handle syscall.Handle, flags uint32, providerSpecificFlags uint32) (win32err error) = virtdisk.DetachVirtualDisk
//sys getVirtualDiskPhysicalPath(handle syscall.Handle, sizeInBytes *uint32, buffer *uint16) (win32err error) = virtdisk.GetVirtualDiskPhysicalPath
//sys getVirtualDiskInformation(handle syscall.Handle, bufferSize *uint32, info *Info, sizeUsed *uint32) (win32err error) = virtdisk.GetVirtualDiskInformation
//sys setVirtualDiskInformation(handle syscall.Handle, info *Info) (win32err error) = virtdisk.SetVirtualDiskInformation

// Paths are declared *uint16 above: x/sys's mkwinsyscall converts a Go
// string parameter to ANSI bytes unless the DLL function's name ends in
// W, and VirtDisk takes only wide strings (PCWSTR).

// available reports, as an error wrapping [errors.ErrUnsupported], that
// virtdisk.dll or the function p is missing (Windows editions without
// VirtDisk); the generated calls would panic instead.
func available(p *windows.LazyProc, op string) error {
	if err := p.Find(); err != nil {
		return &Error{Op: op, Err: errors.Join(err, errors.ErrUnsupported)}
	}
	return nil
}

// Handle is a VirtDisk handle; close it with [CloseHandle].
type Handle = syscall.Handle

// CreateVirtualDisk calls CreateVirtualDisk synchronously and returns
// the new disk's handle.
func CreateVirtualDisk(st *VirtualStorageType, path string, access, flags uint32, p *CreateParameters) (Handle, error) {
	if err := available(procCreateVirtualDisk, "CreateVirtualDisk"); err != nil {
		return 0, err
	}
	p16, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return 0, &Error{Op: "CreateVirtualDisk", Path: path, Err: err}
	}
	var h syscall.Handle
	if err := createVirtualDisk(st, p16, access, nil, flags, 0, p, nil, &h); err != nil {
		return 0, &Error{Op: "CreateVirtualDisk", Path: path, Err: err}
	}
	return h, nil
}

// OpenVirtualDisk calls OpenVirtualDisk and returns the disk's handle.
func OpenVirtualDisk(st *VirtualStorageType, path string, access, flags uint32, p *OpenParameters) (Handle, error) {
	if err := available(procOpenVirtualDisk, "OpenVirtualDisk"); err != nil {
		return 0, err
	}
	p16, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return 0, &Error{Op: "OpenVirtualDisk", Path: path, Err: err}
	}
	var h syscall.Handle
	if err := openVirtualDisk(st, p16, access, flags, p, &h); err != nil {
		return 0, &Error{Op: "OpenVirtualDisk", Path: path, Err: err}
	}
	return h, nil
}

// AttachVirtualDisk calls AttachVirtualDisk synchronously with no
// security descriptor.
func AttachVirtualDisk(h Handle, flags uint32, p *AttachParameters) error {
	if err := available(procAttachVirtualDisk, "AttachVirtualDisk"); err != nil {
		return err
	}
	if err := attachVirtualDisk(h, nil, flags, 0, p, nil); err != nil {
		return &Error{Op: "AttachVirtualDisk", Err: err}
	}
	return nil
}

// DetachVirtualDisk calls DetachVirtualDisk.
func DetachVirtualDisk(h Handle, flags uint32) error {
	if err := available(procDetachVirtualDisk, "DetachVirtualDisk"); err != nil {
		return err
	}
	if err := detachVirtualDisk(h, flags, 0); err != nil {
		return &Error{Op: "DetachVirtualDisk", Err: err}
	}
	return nil
}

// maxPhysicalPath bounds the buffer grown for
// GetVirtualDiskPhysicalPath; physical paths are short
// (\\.\PhysicalDriveN).
const maxPhysicalPath = 32 << 10

// GetVirtualDiskPhysicalPath returns the path of the attached disk's
// device, such as \\.\PhysicalDrive3.
func GetVirtualDiskPhysicalPath(h Handle) (string, error) {
	if err := available(procGetVirtualDiskPhysicalPath, "GetVirtualDiskPhysicalPath"); err != nil {
		return "", err
	}
	n := uint32(256)
	for {
		buf := make([]uint16, n)
		size := n * 2
		err := getVirtualDiskPhysicalPath(h, &size, &buf[0])
		if err == windows.ERROR_INSUFFICIENT_BUFFER && size/2 > n && size < maxPhysicalPath {
			n = size/2 + 1
			continue
		}
		if err != nil {
			return "", &Error{Op: "GetVirtualDiskPhysicalPath", Err: err}
		}
		return windows.UTF16ToString(buf), nil
	}
}

// GetVirtualDiskInformation fills info, whose Version selects the item.
func GetVirtualDiskInformation(h Handle, info *Info) error {
	if err := available(procGetVirtualDiskInformation, "GetVirtualDiskInformation"); err != nil {
		return err
	}
	size := uint32(unsafe.Sizeof(*info))
	var used uint32
	if err := getVirtualDiskInformation(h, &size, info, &used); err != nil {
		return &Error{Op: fmt.Sprintf("GetVirtualDiskInformation(%d)", info.Version), Err: err}
	}
	return nil
}

// SetVirtualDiskInformation stores the item selected by info.Version.
func SetVirtualDiskInformation(h Handle, info *Info) error {
	if err := available(procSetVirtualDiskInformation, "SetVirtualDiskInformation"); err != nil {
		return err
	}
	if err := setVirtualDiskInformation(h, info); err != nil {
		return &Error{Op: fmt.Sprintf("SetVirtualDiskInformation(%d)", info.Version), Err: err}
	}
	return nil
}

// CloseHandle closes a handle returned by this package.
func CloseHandle(h Handle) error {
	return syscall.CloseHandle(h)
}
