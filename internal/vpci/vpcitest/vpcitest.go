package vpcitest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Node is a device node of the fake device: name below /dev, type 'c' or
// 'b', and numbers. The numbers should be those of a harmless real device
// (such as 1:9, urandom) when a container is to open it.
type Node struct {
	Name         string
	Type         byte
	Major, Minor uint32
}

// AddDevice registers the PCI device of VMBus instance vmbusID on PCI bus
// bus (for example "1a2b:00") under sysRoot:
// devices/vmbus/<id>/pci<bus>/<bus>:00.0, linked from
// bus/vmbus/devices/<id>, and, for each node, creates it under devRoot
// (mknod) and links sys/dev/{char,block}/<major>:<minor> to a directory
// below the PCI device. It returns the PCI device's directory.
func AddDevice(sysRoot, devRoot, vmbusID, bus string, nodes ...Node) (string, error) {
	id := strings.ToLower(vmbusID)
	pciDev := filepath.Join(sysRoot, "devices", "vmbus", id, "pci"+bus, bus+":00.0")
	if err := os.MkdirAll(pciDev, 0o755); err != nil {
		return "", err
	}
	link := filepath.Join(sysRoot, "bus", "vmbus", "devices", id)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(filepath.Join("..", "..", "..", "devices", "vmbus", id), link); err != nil && !os.IsExist(err) {
		return "", err
	}
	for _, n := range nodes {
		if err := AddNode(sysRoot, devRoot, pciDev, n); err != nil {
			return "", err
		}
	}
	return pciDev, nil
}

// AddNode creates node n under devRoot and links its sysfs dev entry to a
// directory below target (a PCI device directory, or any other).
func AddNode(sysRoot, devRoot, target string, n Node) error {
	mode, kind := uint32(unix.S_IFCHR), "char"
	if n.Type == 'b' {
		mode, kind = unix.S_IFBLK, "block"
	}
	p := filepath.Join(devRoot, n.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := unix.Mknod(p, mode|0o666, int(unix.Mkdev(n.Major, n.Minor))); err != nil {
		return fmt.Errorf("mknod %s: %w", p, err)
	}
	class := filepath.Join(target, "class", filepath.Base(n.Name))
	if err := os.MkdirAll(class, 0o755); err != nil {
		return err
	}
	dir := filepath.Join(sysRoot, "dev", kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, class)
	if err != nil {
		return err
	}
	return os.Symlink(rel, filepath.Join(dir, fmt.Sprintf("%d:%d", n.Major, n.Minor)))
}
