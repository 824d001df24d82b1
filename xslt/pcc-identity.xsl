<?xml version="1.0" encoding="UTF-8"?>
<!-- The default transform of the xcap adapter kind, both ways: a PCC stays a
     PCC. It keeps the PCC's elements, attributes and text, and drops what a
     PCC does not define (elements of other namespaces, comments, processing
     instructions), so that a remote XDMS's extensions never reach the local
     PCC or the other way round. Every person-details goes across: the IWF
     merges the first and says in its <response> that others were left out. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:pcc="urn:oma:xml:cab:pcc"
                exclude-result-prefixes="pcc">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:if test="not(pcc:pcc)">
      <xsl:message terminate="yes">the document is not a PCC</xsl:message>
    </xsl:if>
    <xsl:apply-templates select="pcc:pcc"/>
  </xsl:template>

  <xsl:template match="pcc:pcc">
    <pcc xmlns="urn:oma:xml:cab:pcc">
      <xsl:copy-of select="@*[namespace-uri() = '']"/>
      <xsl:apply-templates select="pcc:person-details"/>
    </pcc>
  </xsl:template>

  <xsl:template match="pcc:*">
    <xsl:element name="{local-name()}" namespace="urn:oma:xml:cab:pcc">
      <xsl:copy-of select="@*[namespace-uri() = '' or namespace-uri() = 'http://www.w3.org/XML/1998/namespace']"/>
      <xsl:apply-templates select="pcc:*|text()"/>
    </xsl:element>
  </xsl:template>

  <xsl:template match="text()">
    <xsl:value-of select="."/>
  </xsl:template>
</xsl:stylesheet>
