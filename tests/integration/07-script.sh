#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Script mode (api.md): a fresh one-shot interpreter, main()'s JSON under "result".
. "$(dirname "$0")/../lib.sh"

script() { exec_json "$(jq -cn --arg s "$1" '{script: $s}')"; }

script $'def main():\n    x = 10\n    y = 20\n    return {"sum": x + y, "product": x * y}'
assert_eq "sum and product" "$STATUS $BODY" '200 {"result": {"sum": 30, "product": 200}}'
assert_eq "no session id header in script mode" "$(header pyexec-session)" ""

script $'def main():\n    import pandas as pd\n    df = pd.DataFrame({\n        \'A\': [1, 2, 3],\n        \'B\': [4, 5, 6]\n    })\n    return {\n        "mean_A": float(df[\'A\'].mean()),\n        "sum_B": float(df[\'B\'].sum())\n    }'
assert_eq "pandas DataFrame" "$BODY" '{"result": {"mean_A": 2.0, "sum_B": 15.0}}'

script $'def main():\n    import numpy as np\n    arr = np.array([1, 2, 3, 4, 5])\n    return {\n        "mean": float(np.mean(arr)),\n        "std": float(np.std(arr))\n    }'
assert_eq "numpy" "$BODY" '{"result": {"mean": 3.0, "std": 1.4142135623730951}}'

script $'def main():\n    return set([1, 2, 3])'
assert_eq "a set is not serializable" "$STATUS $BODY" '200 {"error": "main() must return JSON-serializable data"}'

script $'def main():\n    return float("nan")'
assert_eq "NaN is not JSON" "$BODY" '{"error": "main() must return JSON-serializable data"}'

script $'def main():\n    large_list = list(range(100000000))\n    return {"data": large_list}'
assert_eq "100 million ints: memory limit exceeded" "$STATUS $BODY" '200 {"error": "memory limit exceeded"}'

script $'def some_function():\n    return {"data": "test"}'
assert_eq "no main: 422" "$STATUS $BODY" '422 {"error": "no main() function found"}'

script $'def main(:\n    return 1'
assert_eq "does not parse: 422" "$STATUS $BODY" '422 {"error": "no main() function found"}'

script $'main = 3'
assert_eq "main not callable: 422" "$STATUS $BODY" '422 {"error": "no main() function found"}'

script $'def main():\n    print("Analyzing...")\n    return {"status": "success", "value": 42}'
assert_eq "stdout beside result" "$BODY" '{"result": {"status": "success", "value": 42}, "stdout": "Analyzing...\n"}'

script $'def main():\n    return None'
assert_eq "None gives null" "$BODY" '{"result": null}'

script $'def main():\n    return [1, "two", [3.5, {"four": True, "five": None}]]'
assert_eq "nested values, Python spacing" "$BODY" '{"result": [1, "two", [3.5, {"four": true, "five": null}]]}'

script $'def main():\n    print("before")\n    raise ValueError("boom")'
assert_eq "exception: status 200" "$STATUS" 200
assert_eq "exception: no result" "$(jget 'has("result")')" false
assert_eq "exception: output kept" "$(jget .stdout)" "before"
assert_match "exception: traceback in stderr" "$(jget .stderr)" $'Traceback \\(most recent call last\\):.*in main\n.*ValueError: boom$'

script $'def main():\n    while True:\n        pass'
assert_eq "timeout" "$BODY" '{"error": "execution timeout"}'

script $'import sys\ndef main():\n    return __name__\nif __name__ == "__main__":\n    print("guard ran")'
assert_eq "the __main__ guard does not run main twice" "$BODY" '{"result": "__script__"}'

script $'def main():\n    import os\n    return os.getuid() != 0 and not os.path.exists("/etc/passwd")'
assert_eq "scripts are sandboxed too" "$BODY" '{"result": true}'

t_done
