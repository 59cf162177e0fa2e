package handlers

import (
	"encoding/json"
	"fmt"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// maxProperties bounds the Properties string so the response, with JSON
// string escaping, stays inside the host's 64 KiB frame.
const maxProperties = 40 << 10

// encodeProperties marshals props into the Properties string, dropping the
// process list tail if it would not fit.
func encodeProperties(props *prot.PropertiesV2) (string, error) {
	if props == nil {
		return "{}", nil
	}
	for {
		b, err := json.Marshal(props)
		if err != nil {
			return "", fmt.Errorf("encode properties: %w", err)
		}
		if len(b) <= maxProperties {
			return string(b), nil
		}
		if len(props.ProcessList) == 0 {
			return "", prot.Errorf(prot.HrFail, "container properties are %d bytes, too large for one response", len(b))
		}
		props.ProcessList = props.ProcessList[:len(props.ProcessList)/2]
	}
}
