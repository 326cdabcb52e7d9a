-- The built-in attributes of the deployed instances (GALAXY.md §1.5)
-- [reconstructed]: what each primitive instance in the deployed package
-- chain contributes through attribute_definition. The reference is
-- Tag.[primitive_instance.]attribute_name; the gateway drops a built-in
-- whose name a dynamic attribute of the object already has. Built-ins
-- are never flagged historized or alarmed.
-- Columns: gobject_id, primitive_instance, primitive_definition,
-- attribute_name, mx_data_type, is_array, security_classification.
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
)
SELECT DISTINCT c.gobject_id,
       pi.primitive_name  AS primitive_instance,
       pd.primitive_name  AS primitive_definition,
       ad.attribute_name,
       ad.mx_data_type,
       ad.is_array,
       ad.security_classification
FROM deployed_package_chain c
JOIN dbo.primitive_instance pi ON pi.package_id = c.package_id
JOIN dbo.primitive_definition pd ON pd.primitive_definition_id = pi.primitive_definition_id
JOIN dbo.attribute_definition ad ON ad.primitive_definition_id = pi.primitive_definition_id
WHERE ad.attribute_name NOT LIKE '\_%' ESCAPE '\'
ORDER BY c.gobject_id, pi.primitive_name, ad.attribute_name
OPTION (MAXRECURSION 10);
