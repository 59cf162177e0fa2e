package prot_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// TestGoldenResources checks every ModifySettings example in
// testdata/golden/res_*.json (docs/resources.md, "Resource types"): the
// envelope encodes to exactly the example (as a host sends it), and its
// Settings object equals the encoding of the typed settings and decodes back
// into them.
func TestGoldenResources(t *testing.T) {
	scratch := "/run/gcs/c/" + cid1
	tests := []struct {
		golden       string
		cid          string
		requestType  string
		resourceType string
		settings     any // nil: the request carries no Settings
	}{
		{"res_mvd_scratch_add", null, prot.RequestTypeAdd, prot.ResourceMappedVirtualDisk,
			&prot.LCOWMappedVirtualDisk{MountPath: scratch, Lun: 1, EnsureFilesystem: true, Filesystem: "ext4"}},
		{"res_mvd_remove", null, prot.RequestTypeRemove, prot.ResourceMappedVirtualDisk,
			&prot.LCOWMappedVirtualDisk{MountPath: "/run/mounts/scsi/m1", Lun: 2, ReadOnly: true}},
		{"res_scsi_remove", null, prot.RequestTypeRemove, prot.ResourceSCSIDevice, &prot.SCSIDevice{Lun: 2}},
		{"res_vpmem_add", null, prot.RequestTypeAdd, prot.ResourceVPMemDevice, &prot.LCOWMappedVPMemDevice{
			DeviceNumber: 3, MountPath: "/run/layers/p3-8388608-4194304",
			MappingInfo: &prot.LCOWVPMemMappingInfo{DeviceOffsetInBytes: 8388608, DeviceSizeInBytes: 4194304},
		}},
		{"res_mapdir_add", null, prot.RequestTypeAdd, prot.ResourceMappedDirectory, &prot.LCOWMappedDirectory{
			MountPath: "/run/gcs/c/" + cid2 + "/mounts/m3", Port: 564, ShareName: "7", ReadOnly: true,
		}},
		{"res_layers_add", null, prot.RequestTypeAdd, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{
			ContainerID:       cid2,
			ContainerRootPath: "/run/gcs/c/" + cid2 + "/rootfs",
			Layers:            []prot.Layer{{Path: "/run/layers/p1"}, {Path: "/run/layers/p0"}},
			ScratchPath:       "/run/gcs/c/" + cid1 + "/scratch/" + cid2,
		}},
		{"res_layers_remove", null, prot.RequestTypeRemove, prot.ResourceCombinedLayers, &prot.LCOWCombinedLayers{
			ContainerRootPath: "/run/gcs/c/" + cid2 + "/rootfs",
		}},
		{"res_network_add", null, prot.RequestTypeAdd, prot.ResourceNetwork, &prot.LCOWNetworkAdapter{
			NamespaceID:   "3F1D3C3E-9A4B-4C8E-8F59-1B2F5A7E9D10",
			ID:            "a1b2c3d4-0000-4000-8000-00155d0a0b0c",
			MacAddress:    "00-15-5D-0A-0B-0C",
			DNSSuffix:     "svc.cluster.local,cluster.local",
			DNSServerList: "10.0.0.10",
			IPConfigs:     []prot.IPConfig{{IPAddress: "10.244.1.7", PrefixLength: 24}},
			Routes:        []prot.Route{{NextHop: "10.244.1.1", DestinationPrefix: "0.0.0.0/0"}},
		}},
		{"res_network_remove", null, prot.RequestTypeRemove, prot.ResourceNetwork, &prot.LCOWNetworkAdapter{
			NamespaceID: "3F1D3C3E-9A4B-4C8E-8F59-1B2F5A7E9D10", ID: "a1b2c3d4-0000-4000-8000-00155d0a0b0c",
		}},
		{"res_vpci_add", null, prot.RequestTypeAdd, prot.ResourceVPCIDevice, &prot.LCOWMappedVPCIDevice{VMBusGUID: "7a3f1c2e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"}},
		{"res_constraints_update", cid2, prot.RequestTypeUpdate, prot.ResourceContainerConstraints, &prot.LCOWContainerConstraints{
			Linux: specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: i64(268435456)},
				CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
			},
		}},
		{"res_podmem_update", null, prot.RequestTypeUpdate, prot.ResourcePodCgroupMemoryLimit, nil},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			req := &prot.ContainerModifySettings{MessageBase: base(tc.cid), Request: prot.ModificationRequest{
				RequestType: tc.requestType, ResourceType: tc.resourceType,
			}}
			if tc.settings != nil {
				req.Request.Settings = guestEncode(t, tc.settings)
			}
			want := readGolden(t, tc.golden)
			if got := hostEncode(t, req); !bytes.Equal(got, want) {
				t.Errorf("encoding differs from the golden example\n got: %s\nwant: %s", got, want)
			}
			var dec prot.ContainerModifySettings
			if err := prot.Decode(want, &dec, "ModifySettings"); err != nil {
				t.Fatal(err)
			}
			if dec.ContainerID != tc.cid || dec.Request.RequestType != tc.requestType || dec.Request.ResourceType != tc.resourceType {
				t.Fatalf("envelope %+v", dec)
			}
			if tc.settings == nil {
				if dec.Request.Settings != nil {
					t.Fatalf("settings %s, want none", dec.Request.Settings)
				}
				return
			}
			s := newOf(tc.settings)
			if err := prot.Decode(dec.Request.Settings, s, "Settings"); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, tc.settings) {
				t.Errorf("settings decoded\n %+v\nwant\n %+v", s, tc.settings)
			}
		})
	}
}

// TestResourceSettingsKeys checks the key names of the settings without a
// golden example (docs/resources.md: MappedVirtualDisk, VPMemDevice,
// CombinedLayers, SecurityPolicy, SecurityPolicyFragment) by encoding fully
// set values.
func TestResourceSettingsKeys(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"MappedVirtualDisk all fields", &prot.LCOWMappedVirtualDisk{
			MountPath: "/m", Controller: 3, Lun: 63, Partition: 2, ReadOnly: true, Encrypted: true, Options: []string{"ro", "rshared"},
			BlockDev: true, EnsureFilesystem: true, Filesystem: "xfs",
			VerityInfo: &prot.DeviceVerityInfo{Ext4SizeInBytes: 4096, Version: 1, Algorithm: "sha256", SuperBlock: true, RootDigest: "ab", Salt: "cd", BlockSize: 4096},
		}, `{"MountPath":"/m","Controller":3,"Lun":63,"Partition":2,"ReadOnly":true,"Encrypted":true,"Options":["ro","rshared"],"BlockDev":true,"EnsureFilesystem":true,"Filesystem":"xfs","VerityInfo":{"Ext4SizeInBytes":4096,"Version":1,"Algorithm":"sha256","SuperBlock":true,"RootDigest":"ab","Salt":"cd","BlockSize":4096}}`},
		{"MappedVirtualDisk zero", &prot.LCOWMappedVirtualDisk{}, `{}`},
		{"SCSIDevice", &prot.SCSIDevice{Controller: 1, Lun: 5}, `{"Controller":1,"Lun":5}`},
		{"VPMem with verity", &prot.LCOWMappedVPMemDevice{DeviceNumber: 0, MountPath: "/l", VerityInfo: &prot.DeviceVerityInfo{RootDigest: "ff"}}, `{"MountPath":"/l","VerityInfo":{"RootDigest":"ff"}}`},
		{"Layer", &prot.Layer{ID: "i", Path: "p", PathType: "t", Cache: "c"}, `{"Id":"i","Path":"p","PathType":"t","Cache":"c"}`},
		{"Route metric", &prot.Route{NextHop: "fe80::1", DestinationPrefix: "::/0", Metric: 65535}, `{"NextHop":"fe80::1","DestinationPrefix":"::/0","Metric":65535}`},
		{"Network flags", &prot.LCOWNetworkAdapter{EncapOverhead: 50, VPCIAssigned: true, PolicyBasedRouting: true, EnableLowMetric: true}, `{"EncapOverhead":50,"VPCIAssigned":true,"PolicyBasedRouting":true,"EnableLowMetric":true}`},
		{"ConstraintsEmpty", &prot.LCOWContainerConstraints{}, `{"Windows":{},"Linux":{}}`},
		{"SecurityPolicy", &prot.ConfidentialOptions{EnforcerType: "rego", EncodedSecurityPolicy: "cGFja2FnZQ==", EncodedUVMReference: "dXZt", EncodedUVMHashEnvelopeReference: "aGFzaA=="},
			`{"EnforcerType":"rego","EncodedSecurityPolicy":"cGFja2FnZQ==","EncodedUVMReference":"dXZt","EncodedUVMHashEnvelopeReference":"aGFzaA=="}`},
		{"SecurityPolicyFragment", &prot.SecurityPolicyFragment{Fragment: "Zg==", MediaType: "application/cose-x509+rego"}, `{"Fragment":"Zg==","MediaType":"application/cose-x509+rego"}`},
		{"StdioRelaySettings", &prot.ExecuteProcessStdioRelaySettings{StdIn: "a", StdOut: "b", StdErr: "c"}, `{"StdIn":"a","StdOut":"b","StdErr":"c"}`},
		{"ProtocolSupport", &prot.ProtocolSupport{MinimumVersion: "V21.10", MaximumVersion: "V22.01", MinimumProtocolVersion: 0, MaximumProtocolVersion: 4}, `{"MinimumVersion":"V21.10","MaximumVersion":"V22.01","MaximumProtocolVersion":4}`},
		{"ProcessParameters all", &prot.ProcessParameters{CommandLine: "a b", EmulateConsole: true, IsExternal: true}, `{"CommandLine":"a b","EmulateConsole":true,"CreateInUtilityVM":true}`},
		{"Capabilities all", &prot.GcsCapabilities{SendHostCreateMessage: true, SendHostStartMessage: true, HvSocketConfigOnStartup: true},
			`{"SendHostCreateMessage":true,"SendHostStartMessage":true,"HvSocketConfigOnStartup":true,"GuestDefinedCapabilities":{}}`},
		{"Create without legacy versions", &prot.ContainerCreate{MessageBase: base(cid1), ContainerConfig: "{}"},
			`{"ContainerId":"` + cid1 + `","ActivityId":"00000000-0000-0000-0000-000000000000","ContainerConfig":"{}"}`},
		{"Notification kinds", &prot.ContainerNotification{MessageBase: base(cid1), Type: prot.NtForcedExit, Operation: prot.AoNone, ResultInfo: `{"a":1}`},
			`{"ContainerId":"` + cid1 + `","ActivityId":"00000000-0000-0000-0000-000000000000","Type":"ForcedExit","Operation":"None","Result":0,"ResultInfo":"{\"a\":1}"}`},
		{"ocsc carried opaque", &prot.MessageBase{ContainerID: "x", ActivityID: "y", OpenCensusSpanContext: json.RawMessage(`{"TraceID":"0a","SpanID":"0b","TraceOptions":1}`)},
			`{"ContainerId":"x","ActivityId":"y","ocsc":{"TraceID":"0a","SpanID":"0b","TraceOptions":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := guestEncode(t, tc.value); string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			dec := newOf(tc.value)
			if err := prot.Decode([]byte(tc.want), dec, tc.name); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec, tc.value) {
				t.Errorf("decoded %+v, want %+v", dec, tc.value)
			}
		})
	}
}
