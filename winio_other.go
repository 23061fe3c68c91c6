//go:build !windows

package vhd

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/Microsoft/go-winio/pkg/guid"

	"github.com/vhdkit/vhd/internal/attach"
	"github.com/vhdkit/vhd/internal/vdisk"
	"github.com/vhdkit/vhd/vhd1"
	"github.com/vhdkit/vhd/vhdx"
)

// Handle names a disk opened by [OpenVirtualDisk],
// [OpenVirtualDiskWithParameters] or [CreateVirtualDisk]. On Windows it
// is syscall.Handle. Elsewhere, where syscall.Handle does not exist, it
// is a process-local number naming an entry of a table kept by this
// package: the disk's absolute path and how it was opened. The disk file
// itself is not held open, so that an attach can be served by another
// process. Release a Handle with [CloseHandle].
type Handle uintptr

// handleEntry is what a [Handle] stands for.
type handleEntry struct {
	path     string // absolute
	readOnly bool
	// attached is set by an attach through this handle without
	// AttachVirtualDiskFlagPermanentLifetime: as on Windows, such an
	// attach ends when the handle is closed.
	attached bool
}

// handles is the table of open handles. Numbers start high so that a
// Handle is not mistaken for a file descriptor.
var handles = struct {
	sync.Mutex
	next Handle
	m    map[Handle]*handleEntry
}{next: 0x10000, m: map[Handle]*handleEntry{}}

// errBadHandle reports a Handle that is not open.
var errBadHandle = fmt.Errorf("%w: invalid or closed handle", vdisk.ErrInvalidArgument)

func newHandle(e *handleEntry) Handle {
	handles.Lock()
	defer handles.Unlock()
	h := handles.next
	handles.next++
	handles.m[h] = e
	return h
}

func lookupHandle(h Handle) (*handleEntry, error) {
	handles.Lock()
	defer handles.Unlock()
	e, ok := handles.m[h]
	if !ok {
		return nil, errBadHandle
	}
	return e, nil
}

// CloseHandle releases h. If the disk was attached through h without
// [AttachVirtualDiskFlagPermanentLifetime], it is detached first, as
// Windows does when the last handle closes.
func CloseHandle(h Handle) error {
	handles.Lock()
	e, ok := handles.m[h]
	delete(handles.m, h)
	attached := ok && e.attached
	handles.Unlock()
	if !ok {
		return errBadHandle
	}
	if attached {
		return detachPath(e.path)
	}
	return nil
}

// CreateDiffVhd creates at diffVhdPath a differencing disk whose parent
// is baseVhdPath, with blocks of blockSizeInMB MiB (0 for the default).
// The format follows diffVhdPath's extension, as in [CreateVhdx].
func CreateDiffVhd(diffVhdPath, baseVhdPath string, blockSizeInMB uint32) error {
	bs, err := blockSizeBytes(blockSizeInMB)
	if err != nil {
		return fmt.Errorf("vhd: create %s: %w", diffVhdPath, err)
	}
	p := CreateVirtualDiskParameters{
		Version: 2,
		Version2: CreateVersion2{
			ParentPath:       utf16Ptr(baseVhdPath),
			BlockSizeInBytes: bs,
			OpenFlags:        uint32(OpenVirtualDiskFlagCachedIO),
		},
	}
	h, err := CreateVirtualDisk(diffVhdPath, VirtualDiskAccessNone, CreateVirtualDiskFlagNone, &p)
	if err != nil {
		return err
	}
	return CloseHandle(h)
}

// createFlagsDone are the creation flags honoured here; the others ask
// for Windows features (change tracking, VHD sets, PMEM) and are
// refused.
const createFlagsDone = CreateVirtualDiskFlagFullPhysicalAllocation |
	CreateVirtualDiskFlagSparseFile | CreateVirtualDiskFlagCreateBackingStorage

// CreateVirtualDisk creates a disk as described by parameters (Version
// 2) and returns a handle to it. The format follows path's extension
// (".vhd" VHD, else VHDX); CreateVirtualDiskFlagFullPhysicalAllocation
// makes a fixed disk, a ParentPath a differencing disk. Creating from a
// SourcePath is not supported.
func CreateVirtualDisk(path string, virtualDiskAccessMask VirtualDiskAccessMask, createVirtualDiskFlags CreateVirtualDiskFlag, parameters *CreateVirtualDiskParameters) (Handle, error) {
	o, err := createOptions(createVirtualDiskFlags, parameters)
	if err != nil {
		return 0, fmt.Errorf("vhd: create %s: %w", path, err)
	}
	if createVirtualDiskFlags&CreateVirtualDiskFlagCreateBackingStorage != 0 {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return 0, fmt.Errorf("vhd: create %s: %w", path, err)
		}
	}
	d, err := Create(path, formatByExtension(path), o)
	if err != nil {
		return 0, err
	}
	if err := d.Close(); err != nil {
		return 0, fmt.Errorf("vhd: create %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	return newHandle(&handleEntry{path: abs}), nil
}

// createOptions translates go-winio's creation parameters.
func createOptions(flags CreateVirtualDiskFlag, p *CreateVirtualDiskParameters) (*CreateOptions, error) {
	if p == nil {
		return nil, errNoParameters
	}
	if err := checkVersion2(p.Version); err != nil {
		return nil, err
	}
	if f := flags &^ createFlagsDone; f != 0 {
		return nil, vdisk.Unsupportedf("vhd: creation flags %#x", uint32(f))
	}
	v := &p.Version2
	if v.SourcePath != nil {
		return nil, vdisk.Unsupportedf("vhd: creating a disk from a source disk (SourcePath)")
	}
	if v.MaximumSize > 1<<63-1 {
		return nil, fmt.Errorf("%w: maximum size %d", vdisk.ErrInvalidArgument, v.MaximumSize)
	}
	o := &CreateOptions{
		Type:               TypeDynamic,
		Size:               int64(v.MaximumSize),
		BlockSize:          v.BlockSizeInBytes,
		LogicalSectorSize:  v.SectorSizeInBytes,
		PhysicalSectorSize: v.PhysicalSectorSizeInByte,
		ID:                 v.UniqueID,
	}
	switch {
	case v.ParentPath != nil:
		o.Type = TypeDifferencing
		o.Parent = utf16PtrToString(v.ParentPath)
	case flags&CreateVirtualDiskFlagFullPhysicalAllocation != 0:
		o.Type = TypeFixed
	}
	if o.Type != TypeDifferencing && o.Size == 0 {
		return nil, fmt.Errorf("%w: MaximumSize is required", vdisk.ErrInvalidArgument)
	}
	return o, nil
}

// OpenVirtualDisk opens the disk at vhdPath with Version 2 parameters
// and returns a handle to it.
func OpenVirtualDisk(vhdPath string, virtualDiskAccessMask VirtualDiskAccessMask, openVirtualDiskFlags VirtualDiskFlag) (Handle, error) {
	p := OpenVirtualDiskParameters{Version: 2}
	return OpenVirtualDiskWithParameters(vhdPath, virtualDiskAccessMask, openVirtualDiskFlags, &p)
}

// OpenVirtualDiskWithParameters opens the disk at vhdPath and returns a
// handle to it. The disk is opened once, read-only, to check that it
// and (unless OpenVirtualDiskFlagNoParents) its parents can be read; the
// handle is read-only when parameters ask for ReadOnly or GetInfoOnly,
// or when an access mask without write rights is given.
func OpenVirtualDiskWithParameters(vhdPath string, virtualDiskAccessMask VirtualDiskAccessMask, openVirtualDiskFlags VirtualDiskFlag, parameters *OpenVirtualDiskParameters) (Handle, error) {
	if parameters == nil {
		return 0, fmt.Errorf("vhd: open %s: %w", vhdPath, errNoParameters)
	}
	if err := checkVersion2(parameters.Version); err != nil {
		return 0, fmt.Errorf("vhd: open %s: %w", vhdPath, err)
	}
	abs, err := filepath.Abs(vhdPath)
	if err != nil {
		return 0, err
	}
	if openVirtualDiskFlags&OpenVirtualDiskFlagNoParents != 0 {
		if _, err := DetectFile(abs); err != nil {
			return 0, err
		}
	} else {
		d, err := Open(abs, winioOpenOptions(true))
		if err != nil {
			return 0, err
		}
		d.Close()
	}
	ro := parameters.Version2.ReadOnly || parameters.Version2.GetInfoOnly ||
		(virtualDiskAccessMask != 0 && virtualDiskAccessMask&VirtualDiskAccessWritable == 0)
	return newHandle(&handleEntry{path: abs, readOnly: ro}), nil
}

// winioOpenOptions are the options of every open made for this API:
// like VirtDisk, parents are also looked for at their absolute paths.
func winioOpenOptions(readOnly bool) *OpenOptions {
	return &OpenOptions{ReadOnly: readOnly, Parent: ParentPolicy{AllowAbsolute: true}}
}

// attachFlagsIgnored only matter to Windows' presentation of a disk
// (drive letters, security descriptors, PnP, volume registration).
const attachFlagsIgnored = AttachVirtualDiskFlagNoDriveLetter |
	AttachVirtualDiskFlagNoSecurityDescriptor |
	AttachVirtualDiskFlagBypassDefaultEncryptionPolicy |
	AttachVirtualDiskFlagNonPnp | AttachVirtualDiskFlagRegisterVolume

// AttachVirtualDisk attaches the disk behind handle as a block device
// (on Linux a loop device; see [GetVirtualDiskPhysicalPath]). Raw images
// and fixed VHDs are looped directly; other disks are served through
// FUSE by a background process running this program. Unless
// attachVirtualDiskFlag has [AttachVirtualDiskFlagPermanentLifetime],
// [CloseHandle] detaches the disk again; with it, the attach lasts until
// [DetachVhd] or [DetachVirtualDisk], beyond this process.
// AttachVirtualDiskFlagReadOnly (or a read-only handle) makes the device
// read-only; AttachVirtualDiskFlagRestrictedRange exposes the range
// given in parameters.Version2. Where attaching is impossible (not root,
// no loop or FUSE support, not Linux) the error wraps
// [errors.ErrUnsupported].
func AttachVirtualDisk(handle Handle, attachVirtualDiskFlag AttachVirtualDiskFlag, parameters *AttachVirtualDiskParameters) error {
	e, err := lookupHandle(handle)
	if err != nil {
		return fmt.Errorf("vhd: attach: %w", err)
	}
	if err := attachDisk(e, attachVirtualDiskFlag, parameters); err != nil {
		return fmt.Errorf("vhd: attach %s: %w", e.path, err)
	}
	return nil
}

func attachDisk(e *handleEntry, flags AttachVirtualDiskFlag, p *AttachVirtualDiskParameters) error {
	known := attachFlagsIgnored | AttachVirtualDiskFlagReadOnly |
		AttachVirtualDiskFlagPermanentLifetime | AttachVirtualDiskFlagRestrictedRange
	if f := flags &^ known; f != 0 {
		return vdisk.Unsupportedf("attach flags %#x", uint32(f))
	}
	r := attach.Request{Path: e.path, ReadOnly: e.readOnly || flags&AttachVirtualDiskFlagReadOnly != 0}
	if flags&AttachVirtualDiskFlagRestrictedRange != 0 {
		if p == nil || p.Version != 2 {
			return fmt.Errorf("%w: a restricted range needs version 2 parameters", vdisk.ErrInvalidArgument)
		}
		if p.Version2.RestrictedOffset > 1<<62 || p.Version2.RestrictedLength > 1<<62 {
			return fmt.Errorf("%w: restricted range too large", vdisk.ErrInvalidArgument)
		}
		r.Offset, r.Length = int64(p.Version2.RestrictedOffset), int64(p.Version2.RestrictedLength)
	}
	d, err := Open(e.path, winioOpenOptions(true))
	if err != nil {
		return err
	}
	info := d.Info()
	d.Close()
	r.Size = info.VirtualSize
	if r.Offset+r.Length > r.Size {
		return fmt.Errorf("%w: range %d+%d beyond the disk's %d bytes",
			vdisk.ErrInvalidArgument, r.Offset, r.Length, r.Size)
	}
	// Raw images and fixed VHDs hold the virtual disk byte for byte from
	// offset 0 of the file (FORMATS.md 2.1): a loop device on the file
	// needs no server.
	r.Direct = info.Format == FormatRaw || (info.Format == FormatVHD && info.Type == TypeFixed)
	if _, err := attach.Attach(r); err != nil {
		return err
	}
	if flags&AttachVirtualDiskFlagPermanentLifetime == 0 {
		handles.Lock()
		e.attached = true
		handles.Unlock()
	}
	return nil
}

// AttachVhd attaches the disk at path read-write until [DetachVhd] is
// called, beyond the life of this process (go-winio's version detached
// the disk again as it returned; see the Windows implementation).
func AttachVhd(path string) error {
	h, err := OpenVirtualDisk(path, VirtualDiskAccessNone,
		OpenVirtualDiskFlagCachedIO|OpenVirtualDiskFlagIgnoreRelativeParentLocator)
	if err != nil {
		return err
	}
	p := AttachVirtualDiskParameters{Version: 2}
	err = AttachVirtualDisk(h, AttachVirtualDiskFlagPermanentLifetime, &p)
	if cerr := CloseHandle(h); err == nil {
		err = cerr
	}
	return err
}

// DetachVirtualDisk detaches the disk behind handle. It waits until the
// disk file has been synced and closed. Detaching a device that is
// mounted fails with an error wrapping syscall.EBUSY.
func DetachVirtualDisk(handle Handle) error {
	e, err := lookupHandle(handle)
	if err != nil {
		return fmt.Errorf("vhd: detach: %w", err)
	}
	if err := detachPath(e.path); err != nil {
		return err
	}
	handles.Lock()
	e.attached = false
	handles.Unlock()
	return nil
}

// DetachVhd detaches the disk at path, found by its absolute path; see
// [DetachVirtualDisk].
func DetachVhd(path string) error {
	return detachPath(path)
}

func detachPath(path string) error {
	if err := attach.Detach(path); err != nil {
		return fmt.Errorf("vhd: detach %s: %w", path, err)
	}
	return nil
}

// GetVirtualDiskPhysicalPath returns the block device of the attached
// disk behind handle, such as /dev/loop3. A disk that is not attached
// gives an error wrapping [fs.ErrNotExist].
func GetVirtualDiskPhysicalPath(handle Handle) (string, error) {
	e, err := lookupHandle(handle)
	if err != nil {
		return "", fmt.Errorf("vhd: physical path: %w", err)
	}
	st, err := attach.Find(e.path)
	if err != nil {
		return "", fmt.Errorf("vhd: physical path of %s: %w", e.path, err)
	}
	return st.Device, nil
}

// GetVirtualDiskIdentifier returns the identifier of the disk at vhdPath:
// the VHDX Virtual Disk ID or the VHD footer's Unique Id, as [Info]'s ID
// shows it. VHD Unique Ids have no byte order of their own; like libvhdi
// and qemu, the GUID is their 16 bytes in RFC 4122 order.
func GetVirtualDiskIdentifier(vhdPath string) (guid.GUID, error) {
	d, err := Open(vhdPath, &OpenOptions{ReadOnly: true})
	if err != nil {
		return guid.GUID{}, err
	}
	defer d.Close()
	info := d.Info()
	if info.Format != FormatVHD && info.Format != FormatVHDX {
		return guid.GUID{}, fmt.Errorf("vhd: identifier of %s: %w: %v disks have none",
			vhdPath, vdisk.ErrInvalidArgument, info.Format)
	}
	g, err := guid.FromString(info.ID)
	if err != nil {
		return guid.GUID{}, fmt.Errorf("vhd: identifier of %s: %q: %w", vhdPath, info.ID, err)
	}
	return g, nil
}

// SetVirtualDiskIdentifier sets the identifier of the disk at vhdPath
// (see [GetVirtualDiskIdentifier]). The disk must not be attached.
// Children of the disk record its identifier (VHD) and stop matching it,
// as on Windows.
//
// VHD: the footer at the end of the file is rewritten and synced, then
// the copy at offset 0 of a dynamic or differencing disk.
//
// VHDX: the Virtual Disk ID metadata item is rewritten through the
// VHDX log ([vhdx.Disk.SetVirtualDiskID]), so a crash leaves the old
// or the new identifier.
func SetVirtualDiskIdentifier(vhdPath string, identifier guid.GUID) error {
	if err := setIdentifier(vhdPath, identifier); err != nil {
		return fmt.Errorf("vhd: set identifier of %s: %w", vhdPath, err)
	}
	return nil
}

func setIdentifier(path string, id guid.GUID) error {
	f, err := DetectFile(path)
	if err != nil {
		return err
	}
	switch f {
	case FormatVHDX:
		return setVHDXIdentifier(path, id)
	case FormatVHD:
	default:
		return fmt.Errorf("%w: %v disks have no identifier", vdisk.ErrInvalidArgument, f)
	}
	if st, err := attach.Find(path); err == nil {
		return fmt.Errorf("attached as %s: %w", st.Device, fs.ErrExist)
	}
	// Validate the whole disk (footer, header, BAT, parents) through
	// the format package before touching it; the footer it chose is the
	// authoritative one.
	d, err := vhd1.Open(path, winioOpenOptions(true))
	if err != nil {
		return err
	}
	footer := d.Footer()
	if err := d.Close(); err != nil {
		return err
	}
	footer.UniqueID = id.ToArray()
	return writeVHDFooters(path, &footer)
}

// setVHDXIdentifier sets a VHDX's Virtual Disk ID through package vhdx.
func setVHDXIdentifier(path string, id guid.GUID) error {
	if st, err := attach.Find(path); err == nil {
		return fmt.Errorf("attached as %s: %w", st.Device, fs.ErrExist)
	}
	d, err := vhdx.Open(path, winioOpenOptions(false))
	if err != nil {
		return err
	}
	err = d.SetVirtualDiskID(id)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeVHDFooters writes footer over the footer at the end of the VHD at
// path, syncs, then over the copy at offset 0 of a dynamic or
// differencing disk, and syncs again (FORMATS.md 2.9: the end footer is
// authoritative, so a crash between the two leaves a valid disk with the
// new identifier). Only footers whose cookie is in place are replaced.
func writeVHDFooters(path string, footer *vhd1.Footer) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	enc := footer.Encode()
	end := int64(-1)
	for _, back := range []int64{512, 511} {
		if size >= back && hasCookie(f, size-back) {
			end = size - back
			break
		}
	}
	if end < 0 {
		return vdisk.Corruptf("vhd", "footer", "Cookie", size-512,
			"no footer at the end of the file; repair the disk first")
	}
	if _, err := f.WriteAt(enc[:size-end], end); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if footer.DiskType == vhd1.DiskTypeFixed || end == 0 || !hasCookie(f, 0) {
		return f.Close()
	}
	if _, err := f.WriteAt(enc, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// hasCookie reports whether the VHD footer cookie "conectix" is at off.
func hasCookie(f *os.File, off int64) bool {
	var b [8]byte
	_, err := f.ReadAt(b[:], off)
	return err == nil && string(b[:]) == "conectix"
}
