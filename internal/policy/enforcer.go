package policy

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/Microsoft/hcsshim/pkg/securitypolicy"
	"github.com/sirupsen/logrus"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// Enforcer type names a host may send in ConfidentialOptions.EnforcerType.
const (
	EnforcerOpenDoor = "open_door"
	EnforcerRego     = "rego"
)

// Initial stances (-initial-policy-stance).
const (
	StanceAllow = "allow"
	StanceDeny  = "deny"
)

// maxDecisionLength bounds the policy decision carried in a denial, as the
// reference does (3 KiB), far inside the bridge's 64 KiB response frame.
const maxDecisionLength = 3 * 1024

// Config configures an Enforcer.
type Config struct {
	// Log receives the enforcer's own messages (never the policy text or
	// environment values).
	Log *logrus.Entry
	// Stance is StanceAllow (open door until a policy arrives) or
	// StanceDeny (closed door until a policy arrives).
	Stance string
	// SNP is the attestation hardware; nil means none (no HOST_DATA check).
	SNP SNP
	// RuntimeLogging, when set, is told whether the current policy allows
	// runtime logging: at New and each time a policy is set. The gcs
	// silences its log stream when it is not.
	RuntimeLogging func(allowed bool)
}

// Enforcer is the seam between the guest and the security policy. It is
// safe for concurrent use; evaluations are serialized.
type Enforcer struct {
	log     *logrus.Entry
	snp     SNP
	logging func(bool)

	// mu guards opts and set and serializes every evaluation.
	mu   sync.Mutex
	opts *securitypolicy.SecurityOptions
	set  bool
	// inconsistent is the first unmount failure in confidential mode
	// (CheckConsistent).
	inconsistent error
	// txMu serializes, under a real policy, storage transactions (the Rego
	// enforcer refuses concurrent ones) with every other evaluation. It is
	// taken before mu.
	txMu sync.Mutex
}

// New returns an Enforcer with the stance's enforcer in place.
func New(cfg Config) (*Enforcer, error) {
	var initial securitypolicy.SecurityPolicyEnforcer
	switch cfg.Stance {
	case StanceAllow, "":
		var err error
		initial, err = securitypolicy.CreateSecurityPolicyEnforcer(EnforcerOpenDoor, "", nil, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("open-door enforcer: %w", err)
		}
	case StanceDeny:
		initial = &securitypolicy.ClosedDoorSecurityPolicyEnforcer{}
	default:
		return nil, fmt.Errorf("%q: %w", cfg.Stance, ErrBadStance)
	}
	if cfg.Log == nil {
		cfg.Log = logging.Discard()
	}
	e := &Enforcer{
		log:     cfg.Log.WithField("component", "policy"),
		snp:     cfg.SNP,
		logging: cfg.RuntimeLogging,
		opts:    securitypolicy.NewSecurityOptions(initial, false, "", "", io.Discard),
	}
	e.applyRuntimeLogging(context.Background(), initial)
	return e, nil
}

// OpenDoor returns an Enforcer that allows everything until a policy
// arrives (the non-confidential default).
func OpenDoor() *Enforcer {
	e, err := New(Config{Stance: StanceAllow})
	if err != nil {
		panic(err) // the open-door enforcer is always registered
	}
	return e
}

func (e *Enforcer) applyRuntimeLogging(ctx context.Context, p securitypolicy.SecurityPolicyEnforcer) {
	if e.logging == nil {
		return
	}
	e.logging(p.EnforceRuntimeLoggingPolicy(ctx) == nil)
}

// current returns the enforcer in force. Callers hold e.mu.
func (e *Enforcer) current() securitypolicy.SecurityPolicyEnforcer {
	return e.opts.PolicyEnforcer
}

// Confidential reports whether a non-empty policy is in force: the
// reference's test for confidential mode.
func (e *Enforcer) Confidential() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.current().EncodedSecurityPolicy() != ""
}

// SetPolicy installs the policy of a SecurityPolicy request. Only one is
// accepted, as in the reference: even an open-door one closes the window.
// Where the SNP device exists, the policy's SHA-256 must equal the
// report's HOST_DATA.
func (e *Enforcer) SetPolicy(ctx context.Context, o prot.ConfidentialOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set {
		return prot.NewError(prot.HrFail, ErrPolicyAlreadySet)
	}
	digest, err := securitypolicy.NewSecurityPolicyDigest(o.EncodedSecurityPolicy)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("security policy: %w", err))
	}
	if err := e.checkHostData(digest); err != nil {
		return prot.NewError(prot.HrFail, err)
	}
	p, err := securitypolicy.CreateSecurityPolicyEnforcer(o.EnforcerType, o.EncodedSecurityPolicy,
		securitypolicy.DefaultCRIMounts(), securitypolicy.DefaultCRIPrivilegedMounts(), maxDecisionLength)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("error creating security policy enforcer: %w", err))
	}
	e.applyRuntimeLogging(ctx, p)
	e.opts = securitypolicy.NewSecurityOptions(p, true, o.EncodedUVMReference, o.EncodedUVMHashEnvelopeReference, io.Discard)
	e.set = true
	e.log.WithFields(logrus.Fields{
		"enforcer":     o.EnforcerType,
		"confidential": o.EncodedSecurityPolicy != "",
		"digest":       hex.EncodeToString(digest),
	}).Info("security policy set")
	return nil
}

func (e *Enforcer) checkHostData(digest []byte) error {
	if e.snp == nil {
		return nil
	}
	present, err := e.snp.Present()
	if err != nil {
		return err
	}
	if !present {
		return nil
	}
	hostData, err := e.snp.HostData()
	if err != nil {
		return err
	}
	if !bytes.Equal(hostData, digest) {
		return fmt.Errorf("%w: policy %x, HOST_DATA %x", ErrHostDataMismatch, digest, hostData)
	}
	return nil
}

// deny wraps an enforcer's refusal as the reference reports it: E_FAIL
// with what was refused and the enforcer's message (the policy decision).
func deny(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return prot.NewError(prot.HrFail, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err))
}

// eval runs f against the enforcer in force, serialized with every other
// evaluation and, under a real policy, with storage transactions (whose
// rollback would otherwise undo what a concurrent evaluation recorded).
func (e *Enforcer) eval(f func(p securitypolicy.SecurityPolicyEnforcer) error) error {
	if e.Confidential() {
		e.txMu.Lock()
		defer e.txMu.Unlock()
	}
	return e.evalLocked(f)
}

// evalLocked is eval for a caller that already holds txMu when needed.
func (e *Enforcer) evalLocked(f func(p securitypolicy.SecurityPolicyEnforcer) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f(e.current())
}

// Shutdown checks a ShutdownGraceful/ShutdownForced of a container.
func (e *Enforcer) Shutdown(ctx context.Context, containerID string) error {
	return e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceShutdownContainerPolicy(ctx, containerID), "shutdown of %s denied by policy", containerID)
	})
}

// Signal checks a SignalProcess; args is the process's command line.
func (e *Enforcer) Signal(ctx context.Context, containerID string, signal int, isInit bool, args []string) error {
	return e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceSignalContainerProcessPolicyV2(ctx, containerID, &securitypolicy.SignalContainerOptions{
			IsInitProcess: isInit, LinuxSignal: sysSignal(signal), LinuxStartupArgs: args,
		}), "signal %d to a process of %s denied by policy", signal, containerID)
	})
}

// GetProperties checks a GetProperties request.
func (e *Enforcer) GetProperties(ctx context.Context) error {
	return e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceGetPropertiesPolicy(ctx), "get properties denied due to policy")
	})
}

// DumpStacks checks a DumpStacks request.
func (e *Enforcer) DumpStacks(ctx context.Context) error {
	return e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceDumpStacksPolicy(ctx), "dump stacks denied due to policy")
	})
}

// HostNetwork checks a container that shares the utility VM's network.
func (e *Enforcer) HostNetwork(ctx context.Context) error {
	return e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return deny(p.EnforceHostNetworkPolicy(ctx), "host network denied by policy")
	})
}
