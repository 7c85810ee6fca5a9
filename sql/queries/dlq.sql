-- Dead-letter queries of `dlq replay` beyond the engine's own (delivery.sql: dlq_list, dlq_replay).

-- name: not_dead
-- The requested ids that are not dead letters (unknown, pending or delivered), in the order
-- given: replay names them instead of answering "replayed 0".
SELECT i.id
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS i (id, n)
WHERE NOT EXISTS (SELECT 1 FROM alert_delivery.delivery_queue q
                  WHERE q.delivery_id = i.id AND q.status = 'dead')
ORDER BY i.n
