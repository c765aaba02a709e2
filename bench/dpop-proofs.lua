-- wrk script: a fresh DPoP proof (RFC 9449) on every request, as real DPoP clients send.
-- Usage: wrk -s bench/dpop-proofs.lua <url> <proof file> <threads>
-- The proof file has one proof per line (made by bench/run.ts just before the run, each with its
-- own jti); thread i sends lines i, i + threads, i + 2 * threads, ... Should a thread run out, it
-- sends its last proof again, which the gateway refuses as a replay: counted as non-2xx.
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local proofs = {}
local sent = 0

function init(args)
  local file, threads = args[1], tonumber(args[2])
  local n = 0
  for line in io.lines(file) do
    if n % threads == id then proofs[#proofs + 1] = line end
    n = n + 1
  end
end

function request()
  sent = sent + 1
  wrk.headers["DPoP"] = proofs[sent] or proofs[#proofs]
  return wrk.format(nil, nil)
end
