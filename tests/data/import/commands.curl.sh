# Exported from the shop's API docs.
curl -X POST https://shop.example.com/api/login \
  -H 'Content-Type: application/json' \
  -H "Accept: application/json" \
  --data-raw '{"username": "ada", "password": "s3cret"}'

curl 'https://shop.example.com/api/items?limit=10' -H 'Authorization: Bearer abc' --compressed -sSL
curl -u ada:s3cret -b 'session=1; theme=dark' -A 'flowrun-test' -e https://shop.example.com/ https://shop.example.com/api/me
curl https://shop.example.com/api/search -G -d q=lamp -d 'max=5' --data-urlencode 'label=red lamp'
curl -d a=1 -d b=2 https://shop.example.com/api/form -m 5
curl --json '{"itemId": 42,
  "quantity": 2}' https://shop.example.com/api/orders
curl -I --url https://shop.example.com/api/health -k -v
curl -XDELETE https://shop.example.com/api/orders/1
