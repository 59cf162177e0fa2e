package initrd

import (
	_ "embed"
)

// UDHCPCScript is the lease script the gcs passes to udhcpc (-s) for an
// adapter that gets its address by DHCP; the image carries it at
// DHCPScriptPath. It is our own (files/udhcpc_config.script).
//
//go:embed files/udhcpc_config.script
var UDHCPCScript []byte

// DHCPScriptPath is where the gcs expects the lease script
// (netconf.DefaultDHCPScript, the path the reference guest uses too).
const DHCPScriptPath = "sbin/udhcpc_config.script"

// passwd and group name root and the user chronyd drops its privileges
// to: Debian builds chronyd with "_chrony" as its default user, and
// without that entry it exits at start ("Could not get user/group ID of
// _chrony"). chronyd makes its own /run/chrony (pid file and command
// socket) and, with the gcs's configuration, needs nothing under
// /var/lib/chrony.
//
//go:embed files/passwd
var passwd []byte

//go:embed files/group
var group []byte

// addConfigFiles adds the image's configuration files.
func addConfigFiles(t *Tree) error {
	files := []struct {
		path string
		perm uint32
		data []byte
	}{
		{"etc/passwd", 0o644, passwd},
		{"etc/group", 0o644, group},
		{DHCPScriptPath, 0o755, UDHCPCScript},
	}
	for _, f := range files {
		if err := t.File(f.path, f.perm, f.data); err != nil {
			return err
		}
	}
	return nil
}
