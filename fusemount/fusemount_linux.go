package fusemount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Server is a mounted disk file system.
type Server struct {
	srv  *fuse.Server
	dir  string
	name string
}

// Mount mounts a file system serving img at dir, an existing empty
// directory, and returns once the kernel has mounted it.
func Mount(dir string, img Image, o *Options) (*Server, error) {
	if o == nil {
		o = &Options{}
	}
	name := o.Name
	if name == "" {
		name = "disk"
	}
	fsName := o.FsName
	if fsName == "" {
		fsName = "vhd"
	}
	root := &rootNode{file: &diskNode{img: img, ro: o.ReadOnly}, name: name}
	mo := fuse.MountOptions{
		FsName:      fsName,
		Name:        "vhd",
		DirectMount: true,
		Debug:       o.Debug,
		// Loop devices issue requests of up to 128 KiB and more;
		// larger FUSE requests mean fewer round trips.
		MaxWrite: 1 << 20,
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	if o.Logger != nil && o.Debug {
		mo.Logger = slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug)
	}
	srv, err := fs.Mount(dir, root, &fs.Options{MountOptions: mo})
	if err != nil {
		return nil, fmt.Errorf("fusemount: mount %s: %w", dir, err)
	}
	return &Server{srv: srv, dir: dir, name: name}, nil
}

// Path returns the path of the served file.
func (s *Server) Path() string { return s.dir + "/" + s.name }

// Wait returns when the file system has been unmounted.
func (s *Server) Wait() { s.srv.Wait() }

// Unmount unmounts the file system; it fails with EBUSY while the file
// is open (for example by a loop device).
func (s *Server) Unmount() error {
	if err := s.srv.Unmount(); err != nil {
		return fmt.Errorf("fusemount: unmount %s: %w", s.dir, err)
	}
	return nil
}

// rootNode is the mount's directory; it holds only the disk file.
type rootNode struct {
	fs.Inode
	file *diskNode
	name string
}

var _ fs.NodeOnAdder = (*rootNode)(nil)

// OnAdd adds the disk file when the file system is mounted.
func (r *rootNode) OnAdd(ctx context.Context) {
	mode := uint32(syscall.S_IFREG)
	ch := r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: mode, Ino: 2})
	r.AddChild(r.name, ch, false)
}

// diskNode is the file holding the disk's raw view.
type diskNode struct {
	fs.Inode
	img Image
	ro  bool
}

var (
	_ fs.NodeOpener    = (*diskNode)(nil)
	_ fs.NodeGetattrer = (*diskNode)(nil)
	_ fs.NodeSetattrer = (*diskNode)(nil)
	_ fs.NodeReader    = (*diskNode)(nil)
	_ fs.NodeWriter    = (*diskNode)(nil)
	_ fs.NodeFsyncer   = (*diskNode)(nil)
	_ fs.NodeFlusher   = (*diskNode)(nil)
	_ fs.NodeAllocater = (*diskNode)(nil)
	_ fs.NodeStatfser  = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*rootNode)(nil)
	_ fs.InodeEmbedder = (*rootNode)(nil)
	_ fs.InodeEmbedder = (*diskNode)(nil)
	_ fs.NodeReleaser  = (*diskNode)(nil)
)

// Open refuses write access on a read-only mount and truncation always.
func (n *diskNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY && n.ro {
		return nil, 0, syscall.EROFS
	}
	if flags&syscall.O_TRUNC != 0 && n.img.Size() != 0 {
		return nil, 0, syscall.EPERM
	}
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

// Getattr reports a regular file of the disk's virtual size.
func (n *diskNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.attr(&out.Attr)
	return 0
}

func (n *diskNode) attr(a *fuse.Attr) {
	mode := uint32(0o644)
	if n.ro {
		mode = 0o444
	}
	size := n.img.Size()
	a.Mode = syscall.S_IFREG | mode
	a.Size = uint64(size)
	a.Blocks = (uint64(size) + 511) / 512
	a.Blksize = 4096
	a.Nlink = 1
}

// Setattr allows only no-op changes: the size of a disk is fixed here
// (resizing is a separate, explicit operation of the format packages).
func (n *diskNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && int64(sz) != n.img.Size() {
		if n.ro {
			return syscall.EROFS
		}
		return syscall.EPERM
	}
	if _, ok := in.GetMode(); ok {
		return syscall.EPERM
	}
	if _, ok := in.GetUID(); ok {
		return syscall.EPERM
	}
	n.attr(&out.Attr)
	return 0
}

// Read reads the disk's content; at and past the end it returns what
// there is, as a file does.
func (n *diskNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := n.img.Size()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rest := size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	k, err := n.img.ReadAt(dest, off)
	if err != nil && !(errors.Is(err, io.EOF) && k == len(dest)) {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// Write writes the disk's content; it fails with EROFS on a read-only
// mount and ENOSPC past the end.
func (n *diskNode) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if n.ro {
		return 0, syscall.EROFS
	}
	if off < 0 || off > n.img.Size() || int64(len(data)) > n.img.Size()-off {
		return 0, syscall.ENOSPC
	}
	k, err := n.img.WriteAt(data, off)
	if err != nil {
		return uint32(k), errno(err)
	}
	return uint32(k), 0
}

// Allocate accepts only ranges inside the disk, which are always
// writable here; anything else is ENOSPC or, for hole punching, not
// supported.
func (n *diskNode) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	if n.ro {
		return syscall.EROFS
	}
	if mode != 0 {
		return syscall.EOPNOTSUPP
	}
	if off > uint64(n.img.Size()) || size > uint64(n.img.Size())-off {
		return syscall.ENOSPC
	}
	return 0
}

// Fsync makes every write durable: the loop driver sends one for each
// flush request of the block device.
func (n *diskNode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.ro {
		return 0
	}
	return errno(n.img.Sync())
}

// Flush, sent on each close of a descriptor, syncs the disk too.
func (n *diskNode) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	if n.ro {
		return 0
	}
	return errno(n.img.Sync())
}

// Release has nothing to free: opens carry no state.
func (n *diskNode) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	return 0
}

// Getattr reports the directory.
func (r *rootNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2
	return 0
}

// Statfs reports the disk's size as the file system's capacity, all
// used.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = uint64(r.file.img.Size()+4095) / 4096
	out.NameLen = 255
	out.Files = 1
	return 0
}

// errno maps the engine's errors to the errno a file system returns.
func errno(err error) syscall.Errno {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, vdisk.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, vdisk.ErrOutOfRange):
		return syscall.ENOSPC
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.EOPNOTSUPP
	case errors.As(err, &en):
		return en
	}
	return syscall.EIO
}
