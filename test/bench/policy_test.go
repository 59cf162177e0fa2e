//go:build rego

package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/Microsoft/hcsshim/pkg/securitypolicy"

	"github.com/opengcs/opengcs/internal/hostclient"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// realisticPolicy pins n containers (command, env rules, a layer hash,
// user, capabilities, one exec and a signal each) and two external
// processes: the shape of a confidential pod's policy.
func realisticPolicy(b *testing.B, n int) string {
	b.Helper()
	caps := securitypolicy.DefaultUnprivilegedCapabilities()
	var cs []*securitypolicy.Container
	for i := 0; i < n; i++ {
		c, err := securitypolicy.CreateContainerPolicy(
			[]string{"/app/server", fmt.Sprintf("--port=%d", 8000+i)},
			[]string{fmt.Sprintf("%064x", i+1), fmt.Sprintf("%064x", i+1000)},
			[]securitypolicy.EnvRuleConfig{
				{Strategy: securitypolicy.EnvVarRuleString, Rule: "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", Required: true},
				{Strategy: securitypolicy.EnvVarRuleRegex, Rule: "TERM=.+"},
				{Strategy: securitypolicy.EnvVarRuleRegex, Rule: "APP_[A-Z_]+=.*"},
			},
			"/app", nil, false,
			[]securitypolicy.ExecProcessConfig{{Command: []string{"/app/healthcheck"}}}, nil, true, true,
			securitypolicy.UserConfig{
				UserIDName:   securitypolicy.IDNameConfig{Strategy: securitypolicy.IDNameStrategyID, Rule: "1000"},
				GroupIDNames: []securitypolicy.IDNameConfig{{Strategy: securitypolicy.IDNameStrategyID, Rule: "1000"}},
				Umask:        "0022",
			},
			&securitypolicy.CapabilitiesConfig{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: []string{}, Ambient: []string{}}, "")
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	ext := []securitypolicy.ExternalProcessConfig{{Command: []string{"ls", "-l", "/dev/mapper"}, WorkingDir: "/"}, {Command: []string{"true"}, WorkingDir: "/"}}
	text, err := securitypolicy.MarshalPolicy("rego", false, cs, ext, nil, true, true, true, false, false, false, false, false)
	if err != nil {
		b.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString([]byte(text))
}

// BenchmarkPolicyRSS reports the gcs's resident memory idle, then with a
// 10-container Rego policy loaded (the enforcer compiles the policy with
// the framework and API modules), then after 50 denied requests evaluated
// against it.
func BenchmarkPolicyRSS(b *testing.B) {
	pol := realisticPolicy(b, 10)
	var idle, loaded, used int64
	for i := 0; i < b.N; i++ {
		g, c := startGCS(b, "info")
		settle := func() int64 {
			time.Sleep(500 * time.Millisecond)
			rss, err := g.RSS()
			if err != nil {
				b.Fatal(err)
			}
			return rss
		}
		idle += settle()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceSecurityPolicy,
			&prot.ConfidentialOptions{EnforcerType: "rego", EncodedSecurityPolicy: pol}); err != nil {
			b.Fatal(err)
		}
		loaded += settle()
		for j := 0; j < 50; j++ {
			_, err := c.ExecuteProcess(ctx, prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"cat", "/etc/shadow"}}, prot.ExecuteProcessVsockStdioRelaySettings{})
			if hostclient.ResultOf(err) != prot.HrFail {
				b.Fatalf("external process: %v", err)
			}
		}
		used += settle()
		cancel()
		c.Close()
		g.Stop()
	}
	mib := func(v int64) float64 { return float64(v) / float64(b.N) / (1 << 20) }
	b.ReportMetric(mib(idle), "idle-RSS-MiB")
	b.ReportMetric(mib(loaded), "policy-RSS-MiB")
	b.ReportMetric(mib(used), "after-50-denials-RSS-MiB")
}

// BenchmarkPolicyDeniedExternal is the round trip of an external exec
// that a 10-container Rego policy refuses: no process is started, so the
// cost is the bridge plus one Rego evaluation and the denial's decision
// (compare with the cheap round trips of BenchmarkRoundTrip).
func BenchmarkPolicyDeniedExternal(b *testing.B) {
	pol := realisticPolicy(b, 10)
	_, c := startGCS(b, "info")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.Modify(ctx, prot.NullContainerID, prot.RequestTypeAdd, prot.ResourceSecurityPolicy,
		&prot.ConfidentialOptions{EnforcerType: "rego", EncodedSecurityPolicy: pol}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := c.ExecuteProcess(ctx, prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"cat", "/etc/shadow"}}, prot.ExecuteProcessVsockStdioRelaySettings{})
		if hostclient.ResultOf(err) != prot.HrFail {
			b.Fatalf("external process: %v", err)
		}
	}
}
