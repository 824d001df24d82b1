<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of an http adapter's export transform: a PCC (the
     person-details the request's source-sel selects, already filtered by its
     fields) into the "vcdir" contact format of vendor-example-import.xsl.
     The parameter remote-user is the request's <remote-user>. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:p="urn:oma:xml:cab:pcc"
                xmlns="http://ns.example.com/vcdir/1"
                exclude-result-prefixes="p">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:apply-templates select="p:pcc/p:person-details[1]"/>
  </xsl:template>

  <xsl:template match="p:person-details">
    <xsl:variable name="n" select="p:name/p:name-entry[1]"/>
    <contact id="{$remote-user}">
      <xsl:for-each select="$n/p:display-name"><displayName><xsl:value-of select="."/></displayName></xsl:for-each>
      <xsl:for-each select="$n/p:given | $n/p:first"><givenName><xsl:value-of select="."/></givenName></xsl:for-each>
      <xsl:for-each select="$n/p:family"><familyName><xsl:value-of select="."/></familyName></xsl:for-each>
      <xsl:for-each select="p:comm-addr/p:tel">
        <phone>
          <xsl:attribute name="type">
            <xsl:choose>
              <xsl:when test="@tel-type = 'Mobile'">mobile</xsl:when>
              <xsl:when test="@tel-type = 'Work'">work</xsl:when>
              <xsl:when test="@tel-type = 'Home'">home</xsl:when>
              <xsl:when test="@tel-type = 'Fax'">fax</xsl:when>
              <xsl:otherwise>other</xsl:otherwise>
            </xsl:choose>
          </xsl:attribute>
          <xsl:variable name="t" select="normalize-space(p:tel-nb/p:tel-string)"/>
          <xsl:choose>
            <xsl:when test="starts-with($t, 'tel:')"><xsl:value-of select="substring($t, 5)"/></xsl:when>
            <xsl:otherwise><xsl:value-of select="$t"/></xsl:otherwise>
          </xsl:choose>
        </phone>
      </xsl:for-each>
      <xsl:for-each select="p:comm-addr/p:uri-entry[@addr-uri-type = 'Email']">
        <email><xsl:value-of select="substring-after(normalize-space(p:addr-uri), 'mailto:')"/></email>
      </xsl:for-each>
      <xsl:for-each select="p:address/p:address-entry">
        <address type="{translate(@address-type, 'HWOT', 'hwot')}">
          <xsl:value-of select="normalize-space(p:address-data/p:addr-string)"/>
        </address>
      </xsl:for-each>
      <xsl:for-each select="p:career/p:employer"><organization><xsl:value-of select="."/></organization></xsl:for-each>
      <xsl:for-each select="p:career/p:duty"><jobTitle><xsl:value-of select="."/></jobTitle></xsl:for-each>
      <xsl:for-each select="p:birth/p:birth-date/p:date"><birthday><xsl:value-of select="."/></birthday></xsl:for-each>
      <xsl:for-each select="p:media-list/p:media-entry[1]/p:media/p:media-url"><photo><xsl:value-of select="."/></photo></xsl:for-each>
    </contact>
  </xsl:template>
</xsl:stylesheet>
