-- wrk script: 16 requests in flight per connection, sent in one write
-- (HTTP/1.1 pipelining). wrk counts each response.
local depth = 16
init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, wrk.path) -- the path given in the URL
   end
   req = table.concat(r)
end

request = function()
   return req
end
