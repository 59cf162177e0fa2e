//go:build rego

package policy

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/Microsoft/hcsshim/pkg/securitypolicy"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

const benchPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// benchPolicy pins one container (command, env, layer, user, caps) with
// one exec, like a small real policy.
func benchPolicy(b *testing.B, layer string, args, exec []string) string {
	caps := securitypolicy.DefaultUnprivilegedCapabilities()
	c, err := securitypolicy.CreateContainerPolicy(args, []string{layer},
		[]securitypolicy.EnvRuleConfig{{Strategy: securitypolicy.EnvVarRuleString, Rule: benchPath, Required: true}},
		"/", nil, false, []securitypolicy.ExecProcessConfig{{Command: exec}}, nil, true, true,
		securitypolicy.UserConfig{
			UserIDName:   securitypolicy.IDNameConfig{Strategy: securitypolicy.IDNameStrategyAny},
			GroupIDNames: []securitypolicy.IDNameConfig{{Strategy: securitypolicy.IDNameStrategyAny}},
			Umask:        "0022",
		},
		&securitypolicy.CapabilitiesConfig{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: []string{}, Ambient: []string{}}, "")
	if err != nil {
		b.Fatal(err)
	}
	text, err := securitypolicy.MarshalPolicy("rego", false, []*securitypolicy.Container{c}, nil, nil, true, true, true, true, false, true, false, false)
	if err != nil {
		b.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString([]byte(text))
}

// BenchmarkEnforce measures one policy evaluation per request: a container
// creation (with its overlay, which the Rego framework requires first) and
// an exec, under the open door and under a Rego policy that pins them.
func BenchmarkEnforce(b *testing.B) {
	ctx := context.Background()
	const layer = "16d7ee4c2a1b7c5a0b6a4bb1b3a49b0b5b8f2bb1a0f5c5e0e4d5d8d0c6b2f3a1"
	args, exec := []string{"sh", "-c", "echo hi"}, []string{"echo", "exec"}
	rootfs := b.TempDir()
	for _, d := range []string{"etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	caps := securitypolicy.DefaultUnprivilegedCapabilities()
	proc := func(a []string) *specs.Process {
		return &specs.Process{Args: a, Cwd: "/", Env: []string{benchPath}, NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}
	}
	for _, tc := range []struct {
		name string
		opts prot.ConfidentialOptions
	}{
		{"open_door", prot.ConfidentialOptions{}},
		{"rego", prot.ConfidentialOptions{EnforcerType: EnforcerRego, EncodedSecurityPolicy: benchPolicy(b, layer, args, exec)}},
	} {
		e := OpenDoor()
		if err := e.SetPolicy(ctx, tc.opts); err != nil {
			b.Fatal(err)
		}
		p := e.opts.PolicyEnforcer
		if err := p.EnforceDeviceMountPolicy(ctx, "/run/mounts/scsi/m1", layer); err != nil {
			b.Fatal(err)
		}
		n := 0
		newContainer := func() string {
			n++
			id := fmt.Sprintf("%064x", n)
			if err := p.EnforceOverlayMountPolicy(ctx, id, []string{"/run/mounts/scsi/m1"}, "/run/gcs/c/"+id+"/rootfs"); err != nil {
				b.Fatal(err)
			}
			return id
		}
		create := func(id string) {
			spec := &specs.Spec{Process: proc(args), Root: &specs.Root{Path: rootfs}, Mounts: securitypolicy.DefaultCRIMounts()[:7]}
			if _, err := e.CreateContainer(ctx, CreateRequest{ContainerID: id, SandboxID: id, Spec: spec}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(tc.name+"/create", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				create(newContainer())
			}
		})
		id := newContainer()
		create(id)
		b.Run(tc.name+"/exec", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := e.ExecInContainer(ctx, id, rootfs, proc(exec)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
