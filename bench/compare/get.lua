-- wrk script of bench/compare/run: GET with an optional $DELAY_MS between requests.
local pause = tonumber(os.getenv("DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
