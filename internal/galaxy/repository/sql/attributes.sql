-- The configured (dynamic) attributes of the deployed instances
-- (GALAXY.md §1.5) [reconstructed]: every package of each instance's
-- deployed package chain (at most 10 levels) contributes its
-- dynamic_attribute rows; names starting with "_" are hidden at run time.
-- An attribute is historized (alarmed) when a HistoryExtension
-- (AlarmExtension) primitive named after it is in the chain. The array
-- length is in mx_value (decoded by the gateway, arrayLength).
-- Columns: gobject_id, attribute_name, mx_data_type, is_array, mx_value,
-- security_classification, is_historized, is_alarm.
WITH deployed_package_chain AS (
    SELECT g.gobject_id, p.package_id, p.derived_from_package_id AS next_id, 0 AS depth
    FROM dbo.gobject g
    JOIN dbo.package p ON p.package_id = g.deployed_package_id
    WHERE g.is_template = 0 AND g.deployed_package_id <> 0
    UNION ALL
    SELECT c.gobject_id, p.package_id, p.derived_from_package_id, c.depth + 1
    FROM deployed_package_chain c
    JOIN dbo.package p ON p.package_id = c.next_id
    WHERE c.next_id <> 0 AND c.depth < 9
),
extension AS (
    SELECT DISTINCT c.gobject_id, pi.primitive_name, pd.primitive_name AS kind
    FROM deployed_package_chain c
    JOIN dbo.primitive_instance pi ON pi.package_id = c.package_id
    JOIN dbo.primitive_definition pd ON pd.primitive_definition_id = pi.primitive_definition_id
    WHERE pd.primitive_name IN ('HistoryExtension', 'AlarmExtension')
)
SELECT c.gobject_id,
       da.attribute_name,
       MIN(da.mx_data_type)                                       AS mx_data_type,
       CAST(MAX(CAST(da.is_array AS int)) AS bit)                 AS is_array,
       MIN(da.mx_value)                                           AS mx_value,
       MIN(da.security_classification)                            AS security_classification,
       CAST(CASE WHEN EXISTS (SELECT 1 FROM extension e
                   WHERE e.gobject_id = c.gobject_id AND e.primitive_name = da.attribute_name
                     AND e.kind = 'HistoryExtension') THEN 1 ELSE 0 END AS bit) AS is_historized,
       CAST(CASE WHEN EXISTS (SELECT 1 FROM extension e
                   WHERE e.gobject_id = c.gobject_id AND e.primitive_name = da.attribute_name
                     AND e.kind = 'AlarmExtension') THEN 1 ELSE 0 END AS bit)   AS is_alarm
FROM deployed_package_chain c
JOIN dbo.dynamic_attribute da ON da.package_id = c.package_id
WHERE da.attribute_name NOT LIKE '\_%' ESCAPE '\'
GROUP BY c.gobject_id, da.attribute_name
ORDER BY c.gobject_id, da.attribute_name
OPTION (MAXRECURSION 10);
